"""What a run imports: `--help` none of the runtime, a CPU procedural run neither numba.cuda, torch nor rerun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

PROBE = """
import sys
from vre_fast.cli import main
code = 0
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
heavy = [m for m in ("numba", "numba.cuda", "torch", "onnxruntime", "cv2", "rerun") if m in sys.modules]
print("imported:", ",".join(heavy))
sys.exit(code)
"""


def imported(*argv: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("imported:"))
    return set(filter(None, line.split(":", 1)[1].strip().split(",")))


def test_help_imports_nothing_heavy():
    assert imported("run", "--help") == set()


def test_a_cpu_procedural_run_imports_neither_numba_cuda_nor_torch(video: Path, tmp_path: Path):
    from test_run import write_plane_depth

    write_plane_depth(tmp_path / "depth", 2, 48, 64)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {
        "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"},
        "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}},
        "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}}}}))
    modules = imported("run", str(video), "-c", str(cfg), "-o", str(tmp_path / "out"), "--frames", "0..2",
                       "--no-progress")
    assert (tmp_path / "out" / "normals" / "npz" / "1.npz").exists()
    assert "numba" in modules and "numba.cuda" not in modules and "torch" not in modules and "rerun" not in modules
