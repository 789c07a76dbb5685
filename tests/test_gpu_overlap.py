"""The stream and event contract of the batch executor (vre_fast/execution/streams.py), on the CPU.

A recording stand-in for a CUDA device's streams is injected into the executor: it logs every copy, record,
wait and launch, and its events complete only when synchronized themselves (stricter than a CUDA stream,
whose earlier events complete with later ones: a rule kept only by the accident of stream order fails here).
The ordering rules are asserted on a run of a small chained graph on that fake device; the null streams of a
CPU run are checked to give the sequential loop's outputs byte for byte.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import frames_of, make_video
from test_engine_equivalence import sequential_reference

from vre_fast import ComputeBatch, Input, Representation, RunOptions, parse_config, register_representation, run
from vre_fast.execution import node as node_module
from vre_fast.execution import ring as ring_module
from vre_fast.execution import scheduler as scheduler_module
from vre_fast.execution.devices import HOST
from vre_fast.execution.ring import FrameRing, FrameSlot
from vre_fast.execution.streams import HostBuffer, NullStreams, _HostBufferPool

FRAMES, HEIGHT, WIDTH, BATCH = 7, 16, 24, 3


# -- a fake CUDA device and its recording streams ----------------------------------------------------------


class FakeArray:
    """A 'device array': a host array behind an interface the runtime treats as a device's."""

    def __init__(self, host: np.ndarray):
        self.host, self.shape, self.dtype, self.nbytes, self.ndim = host, host.shape, host.dtype, host.nbytes, host.ndim

    def __getitem__(self, key: Any) -> FakeArray:
        return FakeArray(self.host[key])

    def copy_to_host(self) -> np.ndarray:
        return self.host.copy()


class FakeDevice:
    name, kind = "cuda:0", "cuda"

    def put(self, host: np.ndarray) -> FakeArray:
        return FakeArray(np.array(host))

    def fetch(self, array: FakeArray) -> np.ndarray:
        return array.copy_to_host()


FAKE = FakeDevice()


class RecordedEvent:
    def __init__(self, number: int, stream: str, log: list):
        self.number, self.stream, self._log = number, stream, log
        self.completed = False

    def synchronize(self) -> None:
        self.completed = True
        self._log.append(("sync", self.number))


class Recording:
    """The `Streams` contract, logged: (op, stream, ...) tuples in the order the runtime issued them."""

    copy, compute = "copy", "compute"

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self._numbers = itertools.count()
        self._local = threading.local()
        self._uncovered: dict[str, list[dict]] = {"copy": [], "compute": []}
        self.h2d: list[dict] = []  # {"host": array read, "event": the event recorded after it}
        self.d2h: list[dict] = []  # {"buffer": HostBuffer written, "event": ...}
        self._buffers = _HostBufferPool(lambda shape, dtype: np.empty(shape, dtype))

    def record(self, stream: str) -> RecordedEvent:
        event = RecordedEvent(next(self._numbers), stream, self.log)
        for op in self._uncovered[stream]:
            op["event"] = event
        self._uncovered[stream] = []
        self.log.append(("record", stream, event.number))
        return event

    def wait(self, stream: str, event: RecordedEvent) -> None:
        self.log.append(("wait", stream, event.number))

    def to_device(self, host: np.ndarray, stream: str) -> FakeArray:
        op = {"host": host, "event": None}
        self.h2d.append(op)
        self._uncovered[stream].append(op)
        self.log.append(("to_device", stream, len(self.h2d) - 1))
        return FakeArray(np.array(host))

    def to_host(self, array: FakeArray, stream: str) -> tuple[np.ndarray, HostBuffer]:
        buffer = self._buffers.take(array.shape, array.dtype)
        buffer.array[...] = array.host
        op = {"buffer": buffer, "event": None}
        self.d2h.append(op)
        self._uncovered[stream].append(op)
        self.log.append(("to_host", stream, len(self.d2h) - 1))
        return buffer.array, buffer

    @contextmanager
    def launching(self, stream: str) -> Iterator[None]:
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = None

    def launch(self, name: str) -> None:
        """What a kernel launch logs: the stream it went on (None: outside `launching`)."""
        self.log.append(("launch", getattr(self._local, "stream", None), name))


RECORDING: list[Recording] = []  # the test's recorder, for the representations below


def _on_host(x: Any) -> np.ndarray:
    return x.host if isinstance(x, FakeArray) else x


def _like_input(out: np.ndarray, x: Any) -> Any:
    return FakeArray(out) if isinstance(x, FakeArray) else out


@register_representation("test_overlap_invert")
class Invert(Representation):
    """Reads the frames; on the fake device its 'kernel' logs its launch."""

    compute_backends = ("cpu", "cuda")
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> Any:
        frames = batch.frames
        if isinstance(frames, FakeArray):
            RECORDING[-1].launch(self.name)
        return _like_input(255 - _on_host(frames), frames)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return decoded


@register_representation("test_overlap_halve")
class Halve(Representation):
    """Reads only its input (kept on the device when that is there)."""

    inputs = (Input("src"),)
    compute_backends = ("cpu", "cuda")
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> Any:
        src = batch.inputs["src"]
        if isinstance(src, FakeArray):
            RECORDING[-1].launch(self.name)
        return _like_input(_on_host(src) // 2, src)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return decoded


def chained(device: str) -> dict:
    """invert (frames, stored, feeds halve) -> halve (stored, a leaf) on `device`; rgb on the host."""
    return {"batch_size": BATCH, "device": device, "representations": {
        "rgb": {"type": "rgb", "device": "cpu"},
        "inverted": {"type": "test_overlap_invert"},
        "halved": {"type": "test_overlap_halve", "dependencies": ["inverted"]},
    }}


def stored(out: Path, name: str, frame: int) -> np.ndarray:
    with np.load(out / name / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """Nodes configured on "cuda" are placed on FAKE, whose streams are a fresh Recording; every frame slot
    given back and every write submitted is checked against it as it happens."""
    recording = Recording()
    RECORDING.append(recording)
    monkeypatch.setattr(node_module, "device_named", lambda name: FAKE if name.startswith("cuda") else HOST)
    monkeypatch.setattr(scheduler_module, "streams_for", lambda device: recording if device is FAKE else NullStreams())
    monkeypatch.setattr(scheduler_module, "can_pin_memory", lambda: False)
    monkeypatch.setattr("vre_fast.runner.require_cuda", lambda names: None)
    recording.slots_given_back = recording.writes_checked = 0

    def given_back(slot: FrameSlot, give_back: Any) -> None:
        for op in recording.h2d:
            if not op.get("checked") and slot.holds(op["host"]):
                assert op["event"] is not None and op["event"].completed, \
                    "a frame slot went back to the decoder before the copy that read it completed"
                op["checked"] = True
        recording.log.append(("slot given back", id(slot)))
        recording.slots_given_back += 1
        give_back(slot)

    original_init = FrameSlot.__init__

    def init(self: FrameSlot, rows: int, frame_shape: tuple, pinned: bool, give_back: Any) -> None:
        original_init(self, rows, frame_shape, pinned, lambda s: given_back(s, give_back))

    monkeypatch.setattr(ring_module.FrameSlot, "__init__", init)
    original_submit = scheduler_module.WritePool.submit

    def submit(self: Any, job: Any) -> None:
        for op in reversed(recording.d2h):  # the latest copy into the (reused) buffer the output lies in
            if op["buffer"].holds(job.stored):
                assert op["event"] is not None and op["event"].completed, \
                    "a write was handed over before the copy of its output to the host completed"
                assert job.frames is op["buffer"], "the write does not hold the pinned buffer it reads"
                recording.writes_checked += 1
                break
        recording.log.append(("write", job.node.name, job.frame))
        original_submit(self, job)

    monkeypatch.setattr(scheduler_module.WritePool, "submit", submit)
    yield recording
    RECORDING.remove(recording)


def test_copies_compute_and_writes_are_ordered_by_events(tmp_path: Path, fake_cuda: Recording):
    video = make_video(tmp_path / "v.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    run(video, parse_config(chained("cuda")), tmp_path / "gpu", RunOptions(progress=False))
    log = fake_cuda.log
    launches = [i for i, e in enumerate(log) if e[0] == "launch"]
    chunks = -(-FRAMES // BATCH)
    assert [log[i][2] for i in launches] == ["inverted", "halved"] * chunks
    assert all(log[i][1] == "compute" for i in launches), "a kernel was launched outside the compute stream"

    # 1. host -> device: copy on `copy`, event recorded after it, `compute` waits on it before the launch
    copies = [i for i, e in enumerate(log) if e[0] == "to_device"]
    assert len(copies) == chunks  # the frames once per chunk; halved reads inverted's output on the device
    for i in copies:
        assert log[i][1] == "copy"
        recorded = next(j for j in range(i + 1, len(log)) if log[j][:2] == ("record", "copy"))
        waited = next(j for j in range(recorded + 1, len(log)) if log[j][0] == "wait")
        launch = next(j for j in launches if j > i)
        assert log[waited] == ("wait", "compute", log[recorded][2]) and waited < launch

    # 3. device -> host: after the kernels (compute event waited on by `copy`), then its own event
    backs = [i for i, e in enumerate(log) if e[0] == "to_host"]
    assert len(backs) == 2 * chunks  # both are stored
    for i in backs:
        assert log[i][1] == "copy"
        assert log[i - 2][:2] == ("record", "compute") and log[i - 1] == ("wait", "copy", log[i - 2][2])
        assert log[i + 1][:2] == ("record", "copy")
        assert max(j for j in launches if j < i) < i - 2  # the kernel it copies was launched before
    assert all(op["event"].completed for op in fake_cuda.d2h)

    # 2. and 3. checked as they happened (the fixture): slots back after their copies, writes after theirs
    assert fake_cuda.slots_given_back >= chunks and all(op.get("checked") for op in fake_cuda.h2d)
    assert fake_cuda.writes_checked == 2 * FRAMES

    # the leaf (halved) is finished after the chunk's last launch: its writes follow the next node's launch
    first_halved_write = next(i for i, e in enumerate(log) if e[:2] == ("write", "halved"))
    first_inverted_write = next(i for i, e in enumerate(log) if e[:2] == ("write", "inverted"))
    assert first_inverted_write < launches[1] < first_halved_write

    # and the outputs are a CPU run's
    run(video, parse_config(chained("cpu")), tmp_path / "cpu", RunOptions(progress=False))
    for name in ("rgb", "inverted", "halved"):
        for f in range(FRAMES):
            assert np.array_equal(stored(tmp_path / "gpu", name, f), stored(tmp_path / "cpu", name, f)), (name, f)


def test_the_null_streams_give_the_sequential_loops_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A CPU run (null streams: the one code path, nothing behind it) against the contract by hand, frame by
    frame, with a leaf finished at the chunk's end and a dependency read on the host."""
    used: list = []
    monkeypatch.setattr(scheduler_module, "streams_for", lambda device: used.append(device) or NullStreams())
    video = make_video(tmp_path / "v.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    raw = {"batch_size": BATCH, "output_formats": ["npz", "png"], "representations": {
        "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
        "inverted": {"type": "test_overlap_invert"},
        "halved": {"type": "test_overlap_halve", "dependencies": ["inverted"]}}}
    cfg = parse_config(raw)
    run(video, cfg, tmp_path / "out", RunOptions(progress=False))
    assert used and all(d is HOST for d in used)
    reference = sequential_reference(cfg, frames_of(video))
    for name in ("rgb", "hsv", "inverted", "halved"):
        for f, (expected, _) in enumerate(reference[name]):
            on_disk = stored(tmp_path / "out", name, f)
            assert on_disk.dtype == expected.dtype and np.array_equal(on_disk, expected), (name, f)


def test_a_slot_goes_back_only_after_the_copies_that_read_it():
    ring = FrameRing(slots=1, rows=1, frame_shape=(2, 2, 3))
    slot = ring.acquire(threading.Event())
    log: list = []
    copied = RecordedEvent(0, "copy", log)
    slot.after(copied)
    slot.release()
    assert copied.completed and log == [("sync", 0)]
    assert ring.acquire(threading.Event()) is slot


def test_pooled_host_buffers_are_reused_only_once_released():
    pool = _HostBufferPool(lambda shape, dtype: np.zeros(shape, dtype))
    first = pool.take((2, 3), np.dtype(np.float16))
    first.retain()  # a write job viewing it
    first.release()  # the executor's hold
    assert pool.take((2, 3), np.dtype(np.float16)) is not first  # still held by the write
    first.release()
    assert pool.take((2, 3), np.dtype(np.float16)) is first
    assert pool.take((2, 3), np.dtype(np.float32)) is not first  # another dtype: another buffer


def test_only_a_cuda_device_gets_cuda_streams():
    """The host and any other device get null streams (synchronous copies through the device), so a CPU run
    never imports numba.cuda for them (tests/test_startup.py checks the imports of a whole run)."""
    from vre_fast.execution.streams import streams_for

    assert isinstance(streams_for(HOST), NullStreams) and streams_for(HOST).device is HOST
    assert isinstance(streams_for(FAKE), NullStreams) and streams_for(FAKE).device is FAKE


def test_a_host_dependant_reads_its_input_as_copied_back_even_after_the_buffer_is_reused(
        tmp_path: Path, fake_cuda: Recording):
    """inverted (fake cuda, not stored) feeds halved on its device and halved_host on the host: its copy
    back lies in a pooled buffer that halved's copy back reuses before halved_host reads its input."""
    def cfg(device: str) -> dict:
        return {"batch_size": BATCH, "device": device, "representations": {
            "inverted": {"type": "test_overlap_invert", "output_formats": []},
            "halved": {"type": "test_overlap_halve", "dependencies": ["inverted"]},
            "halved_host": {"type": "test_overlap_halve", "dependencies": ["inverted"], "device": "cpu"}}}

    video = make_video(tmp_path / "v.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    run(video, parse_config(cfg("cuda")), tmp_path / "gpu", RunOptions(progress=False))
    run(video, parse_config(cfg("cpu")), tmp_path / "cpu", RunOptions(progress=False))
    assert len({id(op["buffer"]) for op in fake_cuda.d2h}) < len(fake_cuda.d2h)  # buffers were reused
    for name in ("halved", "halved_host"):
        for f in range(FRAMES):
            assert np.array_equal(stored(tmp_path / "gpu", name, f), stored(tmp_path / "cpu", name, f)), (name, f)
