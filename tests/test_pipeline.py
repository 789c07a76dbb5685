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
    stats = {rt.name: rt.stats for rt in result.runtimes}
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

    def write(self, frame, stored, image, compress):  # noqa: ANN001
        if frame == 13:
            raise OSError(28, "No space left on device")
        return original(self, frame, stored, image, compress)

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
    from vre_fast.execution.batch import _WriteStage

    original_write, original_submit = FrameFiles.write, _WriteStage.submit
    pending, peak, lock = [0], [0], threading.Lock()

    def submit(self, job):  # noqa: ANN001
        with lock:
            pending[0] += 1
            peak[0] = max(peak[0], pending[0])
        original_submit(self, job)

    def slow_write(self, frame, stored, image, compress):  # noqa: ANN001
        time.sleep(0.01)
        original_write(self, frame, stored, image, compress)
        with lock:
            pending[0] -= 1

    monkeypatch.setattr(_WriteStage, "submit", submit)
    monkeypatch.setattr(FrameFiles, "write", slow_write)
    cfg = parse_config({"batch_size": 2, "representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}}})
    run(video, cfg, tmp_path / "out", RunOptions(progress=False, write_workers=2))
    assert pending[0] == 0
    assert peak[0] <= 2 * 4 + 1  # at most max_pending (4 per writer) queued, plus the one being handed over
    assert len(list((tmp_path / "out" / "hsv" / "npz").glob("*.npz"))) == 24
