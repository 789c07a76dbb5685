"""Crash safety in real processes: SIGKILL mid-run then resume; concurrent runs on disjoint ranges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_video

CONFIG = {"batch_size": 2, "representations": {
    "rgb": {"type": "rgb", "output_formats": ["npy"]},
    "hsv": {"type": "hsv", "compress": True},
    "edges": {"type": "edges_canny", "output_formats": ["npz", "png"]},
    "flow": {"type": "optical_flow_classical"},
}}
NUM_FRAMES = 200


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    video = make_video(root / "clip.mp4", num_frames=NUM_FRAMES, height=72, width=96, gop=12)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    clean = root / "clean"
    subprocess.run(cli(video, cfg, clean), check=True, capture_output=True, timeout=120)
    return video, cfg, clean


def cli(video: Path, cfg: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vre_fast", "run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress",
            *extra]


def merged_frames(rep_dir: Path) -> dict[int, dict]:
    from vre_fast.store import RepresentationMetadata

    return RepresentationMetadata.read(rep_dir).frames


def assert_same_outputs(out: Path, clean: Path) -> None:
    for name, definition in CONFIG["representations"].items():
        fmt = definition.get("output_formats", ["npz"])[0]
        files = sorted((clean / name / fmt).glob(f"*.{fmt}"))
        assert len(files) == NUM_FRAMES
        assert sorted(merged_frames(out / name)) == list(range(NUM_FRAMES)), name
        for f in files:  # byte for byte: the arrays, and the npz containers (no timestamps inside)
            assert f.read_bytes() == (out / name / fmt / f.name).read_bytes(), (name, f.name)


@pytest.mark.parametrize("kill_after_files", [3, pytest.param(60, marks=pytest.mark.slow)])
def test_sigkill_then_rerun_equals_clean_run(setup, tmp_path: Path, kill_after_files: int):
    video, cfg, clean = setup
    out = tmp_path / "out"
    proc = subprocess.Popen(cli(video, cfg, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    flow_dir = out / "flow" / "npz"
    while time.monotonic() < deadline:
        if flow_dir.is_dir() and len(os.listdir(flow_dir)) >= kill_after_files:
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before it could be killed; the test needs a longer video"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    partial = len(merged_frames(out / "flow"))
    assert partial < NUM_FRAMES
    killed_record = next((out / ".logs").glob("run-*.json"))
    assert json.loads(killed_record.read_text())["status"] == "running"
    rerun = subprocess.run(cli(video, cfg, out), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_outputs(out, clean)
    killed = json.loads(killed_record.read_text())  # the rerun found the killed run's record and closed it
    assert killed["status"] == "abandoned" and "found by run" in killed["error"], killed
    assert "marked abandoned" in rerun.stderr
    assert not list((out / ".logs").glob("*.lock"))
    # the killed run's journal was folded into the json by the rerun's compaction
    assert not list((out / "flow" / ".metadata.journal").glob("*.jsonl"))
    again = subprocess.run(cli(video, cfg, out), capture_output=True, text=True, timeout=120)
    assert "Nothing to compute" in again.stderr


def test_concurrent_runs_on_disjoint_ranges(setup, tmp_path: Path):
    video, cfg, clean = setup
    out = tmp_path / "out"
    cuts = [0, 70, 130, NUM_FRAMES]
    procs = [subprocess.Popen(cli(video, cfg, out, "--frames", f"{a}..{b}"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for a, b in zip(cuts, cuts[1:])]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert_same_outputs(out, clean)
    records = [json.loads(p.read_text()) for p in (out / ".logs").glob("run-*.json")]
    assert len(records) == 3 and all(r["status"] == "completed" for r in records)
    assert len({r["run_id"] for r in records}) == 3
    for name in CONFIG["representations"]:
        state = json.loads((out / name / ".metadata.json").read_text())
        assert len(state["frames"]) == NUM_FRAMES  # every journal compacted, no entry lost
