"""OUT/.logs/run-<id>.json: who ran what, when, and how it went."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, is_read_only_error

__all__ = ["RunRecord", "close_abandoned_runs", "held_while_running", "new_run_id"]

logger = logging.getLogger("vre_fast")


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    run_id: str
    argv: list[str]
    video: str
    config_hash: str
    config: str
    frames_requested: list[int]  # [start, stop) (the span of frame_list when one was given)
    frame_list: list[int] | None = None  # the frames requested, when a list was (`--frames 5 8 22`)
    source: dict[str, Any] = field(default_factory=dict)  # the video's SourceIdentity
    host: str = field(default_factory=socket.gethostname)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "running"  # running | completed | failed | interrupted | abandoned (found dead by a later run)
    error: str | None = None
    representations: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds per stage, wall, queue depths
    frames_done: int = 0
    frames_failed: int = 0
    frame_times: dict[str, list[int]] = field(default_factory=dict)  # ROS bag input: frame -> [log time, stamp] ns

    def path(self, out_dir: Path) -> Path:
        return out_dir / ".logs" / f"run-{self.run_id}.json"

    def save(self, out_dir: Path) -> None:
        (out_dir / ".logs").mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["started_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started))
        if self.ended is not None:
            data["ended_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.ended))
        atomic_write_bytes(self.path(out_dir), json.dumps(data, indent=1).encode())


def _lock_path(record_path: Path) -> Path:
    return record_path.with_suffix(".lock")


@contextmanager
def held_while_running(record: RunRecord, out_dir: Path) -> Iterator[None]:
    """Holds an flock on .logs/run-<id>.lock for the life of the run, so a later run can tell a record left
    "running" by a killed process (the kernel released its lock) from one of a run still at work. The lock
    is taken before the record is first saved and given up after it is last saved."""
    (out_dir / ".logs").mkdir(parents=True, exist_ok=True)
    lock = _lock_path(record.path(out_dir))
    with open(lock, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def close_abandoned_runs(out_dir: Path, found_by: str) -> list[str]:
    """Marks records still "running" whose process is gone as "abandoned"; best effort on a read-only
    dataset. Returns the run ids marked."""
    marked = []
    for path in sorted((out_dir / ".logs").glob("run-*.json")):
        try:
            if json.loads(path.read_bytes()).get("status") != "running":
                continue
            with _owner_lock(_lock_path(path)) as owner_gone:
                data = json.loads(path.read_bytes())  # re-read: the owner may have finished meanwhile
                if not owner_gone or data.get("status") != "running":
                    continue
                data.update(status="abandoned", error=f"the run stopped without closing its record (killed, "
                                                      f"crashed or lost power); found by run {found_by}")
                atomic_write_bytes(path, json.dumps(data, indent=1).encode())
                marked.append(data["run_id"])
        except (ValueError, KeyError, AttributeError):
            logger.warning("%s: unreadable run record left as it is", path)
        except OSError as exc:
            if not is_read_only_error(exc):
                raise
    for run_id in marked:
        logger.warning("run %s in %s had been left running; marked abandoned", run_id, out_dir)
    return marked


@contextmanager
def _owner_lock(lock: Path) -> Iterator[bool]:
    """Yields True when no live process holds `lock` (it is missing, or we could take it)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)
