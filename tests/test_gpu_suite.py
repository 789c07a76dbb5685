"""bench/gpu_suite.py cannot rot: its sections' plumbing runs here on the CPU (the dry run), a failing section is
recorded and the others still run, a dry run stores no GPU figure, and the targets are judged only on figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_suite  # noqa: E402


def _no_figures(node) -> bool:  # noqa: ANN001
    if isinstance(node, dict):
        return "figures" not in node and all(_no_figures(v) for v in node.values())
    return not isinstance(node, list) or all(_no_figures(v) for v in node)


def test_dry_run_of_the_cheap_sections_and_a_failing_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture):
    def broken(ctx):  # noqa: ANN001, ANN202
        raise RuntimeError("planted")

    monkeypatch.setattr(gpu_suite, "pinned_copy", broken)
    out = tmp_path / "r.json"
    gpu_suite.main(["--dry-run", "--only", "environment,pinned_copy,normals_svd", "--out", str(out)])
    results = json.loads(out.read_text())
    sections = results["sections"]
    assert results["gpu"] is False and results["note"].startswith("no CUDA device: no GPU figure measured")
    assert sections["pinned_copy"]["status"] == "error" and "planted" in sections["pinned_copy"]["error"]
    assert sections["normals_svd"]["status"] == "ok"  # ran after the failing section
    assert sections["normals_svd"]["cpu_dry_run"]["max_abs_diff_numba_vs_numpy"] < 1e-4
    assert "torch" in sections["environment"]["found"]["packages"]
    assert _no_figures(results) and results["verdicts"] == "no CUDA device: nothing to judge"
    printed = capsys.readouterr().out
    assert "[pinned_copy] error" in printed and "no CUDA device: no GPU figure measured" in printed


def test_verdicts_judge_only_figures():
    sections = {"experts": {"figures": {"experts": [
                    {"expert": "depth_anything.small_random", "target_group": "depth", "tensorrt_speedup_batch8": 3.5},
                    {"expert": "semantic_safeuav.430k", "target_group": "segmentation", "tensorrt_speedup_batch8": 2.0},
                    {"expert": "edges_hed.random", "target_group": None, "tensorrt_speedup_batch8": 9.0}]}},
                "realtime_run": {"figures": {"gpu_busy_fraction": 0.95, "end_to_end_over_pure_inference": 0.8}},
                "stream_latency": {"cpu_dry_run": {"added_ms_p50": 0.1, "added_ms_p99": 0.2}}}
    v = gpu_suite.verdicts(sections)
    assert v["tensorrt_speedup_depth_segmentation"] == {"depth_anything.small_random": (3.5, True),
                                                        "semantic_safeuav.430k": (2.0, False)}
    assert v["gpu_busy_fraction"] == (0.95, True) and v["end_to_end_over_pure_inference"] == (0.8, False)
    assert v["run_h2d_over_pinned"] == "not measured"
    assert v["stream_added_latency_ms_p50_p99"] == "not measured"  # a dry run's numbers are not judged


def test_h2d_from_a_profiler_trace(tmp_path: Path):
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": [
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "dur": 1000, "args": {"bytes": 10**7}},
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)", "dur": 1000, "args": {"bytes": 3 * 10**7}},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pinned)", "dur": 5000, "args": {"bytes": 10**9}},
        {"cat": "kernel", "name": "k", "dur": 7}]}))
    h2d = gpu_suite._h2d_from_trace(trace)
    assert (h2d["copies"], h2d["bytes"], h2d["copy_seconds"]) == (2, 4 * 10**7, 0.002)
    assert h2d["gb_s"] == pytest.approx(20.0) and len(h2d["kinds"]) == 2


def test_pyav_ffmpeg_linked_under_plain_sonames(tmp_path: Path):
    libs, folder = tmp_path / "av.libs", tmp_path / "linked"
    libs.mkdir(), folder.mkdir()
    for name in ("libavcodec-5e6b81c2.so.62.28.102", "libswscale-88e9f973.so.9.5.102", "libx264-d6533a8d.so.165"):
        (libs / name).write_bytes(b"")
    gpu_suite.link_ffmpeg(libs, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["libavcodec-5e6b81c2.so.62.28.102", "libavcodec.so.62",
                                                         "libswscale-88e9f973.so.9.5.102", "libswscale.so.9",
                                                         "libx264-d6533a8d.so.165"]
    assert (folder / "libavcodec.so.62").resolve() == libs / "libavcodec-5e6b81c2.so.62.28.102"


def test_the_realtime_config_keeps_its_graph():
    cfg = gpu_suite._realtime_cfg("cuda")
    assert cfg["batch_size"] == 8 and cfg["device"] == "cuda"
    assert {k: v["type"] for k, v in cfg["representations"].items()} == {"semantic": "semantic_safeuav",
                                                                         "depth": "depth_anything"}
    assert cfg["representations"]["depth"]["parameters"]["variant"] == "small_random"


@pytest.mark.slow  # about 20 s on 2 cores: every section, a tiny run and stream of the realtime graph on the CPU
def test_the_whole_dry_run(tmp_path: Path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "bench/gpu_suite.py", "--dry-run", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert list(results["sections"]) == list(gpu_suite.SHARES)
    failed = {k: s.get("error") for k, s in results["sections"].items() if s["status"] != "ok"}
    assert not failed and _no_figures(results)
    assert results["sections"]["cuda_tests"]["cpu_dry_run"]["passed"]
    assert "no CUDA device: no GPU figure measured" in proc.stdout
