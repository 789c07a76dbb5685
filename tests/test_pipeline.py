"""The staged pipeline under stress: out-of-memory, failing and slow writers, against the plain results."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vre_fast import RunOptions, parse_config, register_representation, run
from vre_fast.representation import ComputeBatch, Representation
from vre_fast.store.frames import FrameFiles


@register_representation("test_memory_hungry")
class MemoryHungry(Representation):
    """Runs out of memory on batches larger than 2, like an expert on a small GPU."""

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        if len(batch.indices) > 2:
            raise MemoryError(f"cannot allocate a batch of {len(batch.indices)}")
        return batch.frames.mean(-1).astype(np.float32)


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (out / ".logs").glob("run-*.json")]


def test_out_of_memory_halves_the_batch_and_loses_no_frame(video: Path, tmp_path: Path):
    cfg = parse_config({"batch_size": 8, "representations": {"m": {"type": "test_memory_hungry"},
                                                              "h": {"type": "hsv"}}})
    result = run(video, cfg, tmp_path / "out", RunOptions(progress=False))
    stats = {b.name: b.stats for b in result.bindings}
    assert stats["m"].computed == 24 and not stats["m"].failed_frames
    assert stats["m"].batch_size == 2 and stats["m"].oom_halvings == 2  # 8 -> 4 -> 2, then it stays
    assert stats["h"].batch_size == 8
    rec = records(tmp_path / "out")[0]["representations"]["m"]
    assert rec["batch_size"] == 2 and rec["oom_halvings"] == 2
    for i in range(24):
        with np.load(tmp_path / "out" / "m" / "npz" / f"{i}.npz") as f:
            assert f["arr_0"].shape == (48, 64)


def test_a_failing_writer_stops_the_run_and_keeps_what_was_written(video: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    original = FrameFiles.write

    def write(self, frame, *args):  # noqa: ANN001
        if frame == 13:
            raise OSError(28, "No space left on device")
        return original(self, frame, *args)

    monkeypatch.setattr(FrameFiles, "write", write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        run(video, parse_config({"batch_size": 4, "representations": {"rgb": {"type": "rgb"}}}), out,
            RunOptions(progress=False))
    state = json.loads((out / "rgb" / ".metadata.json").read_text())
    done = sorted(int(k) for k in state["frames"])
    assert 13 not in done and set(range(12)) <= set(done)
    assert all((out / "rgb" / "npz" / f"{i}.npz").exists() for i in done)
    assert records(out)[0]["status"] == "failed" and "No space left" in records(out)[0]["error"]
    monkeypatch.setattr(FrameFiles, "write", original)
    run(video, parse_config({"batch_size": 4, "representations": {"rgb": {"type": "rgb"}}}), out,
        RunOptions(progress=False))
    assert len(json.loads((out / "rgb" / ".metadata.json").read_text())["frames"]) == 24


def test_a_slow_writer_holds_back_compute_instead_of_piling_up_results(video: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """Results waiting for the disk stay bounded (back-pressure), however slow the writes."""
    from vre_fast.execution.operators import WritePool

    original_write, original_submit = FrameFiles.write, WritePool.submit
    pending, peak, lock = [0], [0], threading.Lock()

    def submit(self, job):  # noqa: ANN001
        with lock:
            pending[0] += 1
            peak[0] = max(peak[0], pending[0])
        original_submit(self, job)

    def slow_write(self, frame, *args):  # noqa: ANN001
        time.sleep(0.01)
        original_write(self, frame, *args)
        with lock:
            pending[0] -= 1

    monkeypatch.setattr(WritePool, "submit", submit)
    monkeypatch.setattr(FrameFiles, "write", slow_write)
    cfg = parse_config({"batch_size": 2, "representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}}})
    run(video, cfg, tmp_path / "out", RunOptions(progress=False, write_workers=2))
    assert pending[0] == 0
    assert peak[0] <= 2 * 4 + 1  # at most the writer-queue limit (4 per writer) queued, plus the one handed over
    assert len(list((tmp_path / "out" / "hsv" / "npz").glob("*.npz"))) == 24


def test_pipelined_run_equals_a_plain_sequential_loop_bit_for_bit(video: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    """Batches of 3 through reused ring slots (rgb's outputs are views of them), slow writes, flow's t+1
    frames, against one frame at a time straight from the decoder."""
    from test_engine_equivalence import sequential_reference

    from vre_fast.sources import VideoSource

    original_write = FrameFiles.write

    def slow_write(self, frame, *args):  # noqa: ANN001
        time.sleep(0.005)  # slots come round again while views of them wait to be written
        original_write(self, frame, *args)

    monkeypatch.setattr(FrameFiles, "write", slow_write)
    cfg = {"batch_size": 3, "representations": {  # rgb last: its writes are the last of each chunk
        "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"}, "flow": {"type": "optical_flow_classical"},
        "rgb": {"type": "rgb"}}}
    run(video, parse_config(cfg), tmp_path / "out", RunOptions(progress=False, prefetch_chunks=1))
    with VideoSource(video) as source:
        frames = [f for _, f in source.read(range(source.num_frames))]
    for name, expected in sequential_reference(parse_config(cfg), frames).items():
        for i, (stored, _) in enumerate(expected):
            with np.load(tmp_path / "out" / name / "npz" / f"{i}.npz") as on_disk:
                assert np.array_equal(on_disk["arr_0"], stored), (name, i)


def test_frame_ring_reuses_its_slots_and_bounds_what_is_in_flight():
    from vre_fast.errors import VideoError
    from vre_fast.execution.ring import FrameRing

    ring, stop = FrameRing(slots=2, rows=4, frame_shape=(6, 8, 3)), threading.Event()
    frames = [np.full((6, 8, 3), i, np.uint8) for i in range(4)]
    a = ring.acquire(stop)
    a.fill(enumerate(frames), "clip.mp4")
    memory = a.array
    view = a.take([1, 2])
    assert np.shares_memory(view, memory) and view[:, 0, 0, 0].tolist() == [1, 2]
    assert not np.shares_memory(a.take([0, 2]), memory) and a.holds(view)
    b = ring.acquire(stop)
    stop_later = threading.Timer(0.3, stop.set)
    stop_later.start()
    assert ring.acquire(stop) is None  # both slots in use: waits, until stopped
    stop.clear()
    a.retain()  # a writer still holds a view
    a.release()
    b.release()
    again = ring.acquire(stop)
    assert again is b  # `a` is not free yet
    a.release()
    assert ring.acquire(stop) is a and a.array is memory  # allocated once, reused
    with pytest.raises(VideoError, match=r"clip\.mp4: frame 7 is 10x6, the video's frames are 8x6"):
        a.fill([(7, np.zeros((6, 10, 3), np.uint8))], "clip.mp4")
