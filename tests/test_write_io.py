"""Direct I/O (O_DIRECT) in the store: the same bytes as a buffered write, the fall-backs where a file system
refuses it, and a killed writer leaving only whole files."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vre_fast.store import FrameFiles, atomic
from vre_fast.store.npz import npz_parts

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")


def _parts(size: int, seed: int = 0) -> list[bytes | memoryview]:
    """Parts of odd lengths (none a multiple of the block), one of them a non-byte array's buffer."""
    rng = np.random.default_rng(seed)
    body = rng.integers(0, 2**16, size // 2, dtype=np.uint16)
    return [b"head" * 7, memoryview(body), b"", rng.bytes(4097)]


@pytest.mark.parametrize("size", [3 << 20, (8 << 20) + 12345])  # one staging chunk; two (a chunk boundary)
def test_direct_writes_the_same_bytes_as_buffered(tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, flags, *a: opened.append(flags) or real_open(path, flags, *a))
    parts = _parts(size)
    atomic.atomic_write(tmp_path / "direct.bin", parts, durable=False, direct=True)
    atomic.atomic_write(tmp_path / "buffered.bin", parts, durable=False, direct=False)
    assert [bool(f & os.O_DIRECT) for f in opened] == [True, False]
    expected = b"".join(bytes(memoryview(p).cast("B")) for p in parts)
    assert (tmp_path / "direct.bin").read_bytes() == expected == (tmp_path / "buffered.bin").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_small_files_stay_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, flags, *a: opened.append(flags) or real_open(path, flags, *a))
    atomic.atomic_write(tmp_path / "small.bin", [b"x" * (atomic.DIRECT_MIN_BYTES - 1)], durable=False, direct=True)
    assert opened and not opened[0] & os.O_DIRECT


def test_a_file_system_refusing_o_direct_gets_buffered_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real_open, asked = os.open, []

    def refusing(path, flags, *a):
        asked.append(bool(flags & os.O_DIRECT))
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", refusing)
    monkeypatch.setattr(atomic, "_REFUSE_DIRECT", set())
    parts = _parts(2 << 20)
    for name in ("a.bin", "b.bin"):
        atomic.atomic_write(tmp_path / name, parts, durable=False, direct=True)
        assert (tmp_path / name).read_bytes() == b"".join(bytes(memoryview(p).cast("B")) for p in parts)
    assert asked == [True, False, False]  # the folder is asked once


@pytest.mark.parametrize("failure", ["short", "einval"])
def test_a_refused_or_short_direct_write_goes_on_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          failure: str):
    real_write, calls = os.write, []

    def flaky(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            if failure == "einval":
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_write(fd, memoryview(data)[:1000])  # not a whole block: the rest must be buffered
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky)
    parts = _parts(3 << 20, seed=1)
    atomic.atomic_write(tmp_path / "x.bin", parts, durable=False, direct=True)
    assert (tmp_path / "x.bin").read_bytes() == b"".join(bytes(memoryview(p).cast("B")) for p in parts)


def test_frame_files_direct_npz_equals_buffered_and_loads(tmp_path: Path):
    hsv = np.random.default_rng(2).random((540, 960, 3)).astype(np.float16)  # 3.1 MB: written directly
    for name, direct in (("direct", True), ("buffered", False)):
        FrameFiles(tmp_path / name, direct=direct).make_dirs(("npz",))
        FrameFiles(tmp_path / name, direct=direct).write(0, hsv, ("npz",), None)
    a, b = (tmp_path / "direct/npz/0.npz").read_bytes(), (tmp_path / "buffered/npz/0.npz").read_bytes()
    assert a == b == b"".join(bytes(p) for p in npz_parts(hsv, None))
    with np.load(tmp_path / "direct/npz/0.npz") as data:
        assert np.array_equal(data["arr_0"], hsv)


_WRITER = """
import sys, numpy as np
from pathlib import Path
from vre_fast.store.atomic import atomic_write
out = Path(sys.argv[1])
print("ready", flush=True)
for i in range(10_000):
    data = np.full(3 << 20, i % 251, np.uint8)
    atomic_write(out / f"{i}.bin", [b"%08d" % i, memoryview(data)], durable=False, direct=True)
"""


def test_sigkill_during_direct_writes_leaves_only_whole_files(tmp_path: Path):
    """A killed writer: every file under its final name is whole (its rename came after its last byte)."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("*.bin"))) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.003)  # land inside a write
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    files = sorted(tmp_path.glob("*.bin"), key=lambda p: int(p.stem))
    assert len(files) >= 12
    for path in files:
        data = path.read_bytes()
        i = int(path.stem)
        assert len(data) == 8 + (3 << 20) and data[:8] == b"%08d" % i
        assert np.all(np.frombuffer(data, np.uint8, offset=8) == i % 251)
