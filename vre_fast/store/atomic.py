"""Crash-safe file replacement: a reader sees the old file or the complete new one, never a torn one."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write_bytes", "locked"]


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Temp file in the same directory, fsync, rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (released by the kernel if the holder dies)."""
    with open(lock_path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
