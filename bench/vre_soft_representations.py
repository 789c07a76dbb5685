"""vre-fast's halftone, generalized_boundaries and sift against VRE 1.18.6's python-halftone,
generalized-boundaries and descriptor/sift on the same frames.

    python bench/vre_soft_representations.py [--frames 3] [--size 426x240] [--video examples/bikes.mp4]

VRE runs in its side venv (bench/.vre-venv, installed on first use by _venvs.vre_venv) with the parameters
of its own end-to-end test config (halftone: sample 3, scale 1, percentage 91, angles 0/15/30/45, no
antialias; generalized boundaries: median filtering, adjusted to RGB, 3 channels; SIFT: all keypoints,
and max_keypoints 500 at process_scale 0.5). Prints seconds per frame and how close the outputs are:
halftone, the share of pixels inked alike and the mean |difference| of the ink density over 3 x 3 cells;
generalized boundaries, the mean and largest |difference|; SIFT, keypoint counts and the share of VRE's
keypoints with one of ours within 1 px.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _frames import EXAMPLE, describe, example_frames
from _venvs import vre_venv

from vre_fast.kernels.halftone import halftone_numba
from vre_fast.kernels.soft_segmentation import soft_segmentation

HERE = Path(__file__).parent


def sift_points(frame: np.ndarray, max_keypoints: int | None = None, scale: float = 1.0) -> np.ndarray:
    """(N, 3) i, j, response of what the `sift` representation maps (before the map: the points themselves)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)))
    kps = cv2.SIFT_create(nfeatures=max_keypoints or 0).detect(gray, None)
    return np.array([(kp.pt[1] / scale, kp.pt[0] / scale, kp.response) for kp in kps]).reshape(-1, 3)


def timed(op, frames: np.ndarray) -> tuple[list, np.ndarray]:  # noqa: ANN001
    op(frames[0])  # JIT warm-up
    outs, times = [], []
    for frame in frames:
        start = time.perf_counter()
        outs.append(op(frame))
        times.append(time.perf_counter() - start)
    return outs, np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--size", default="426x240")
    parser.add_argument("--video", type=Path, default=EXAMPLE)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    frames = np.stack(example_frames(args.video, args.frames, width, height))
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", frames=frames)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([str(vre_venv()), str(HERE / "_vre_worker_soft.py"), str(Path(tmp) / "in.npz"),
                        str(Path(tmp) / "out.npz")], check=True, env=env)
        theirs = dict(np.load(Path(tmp) / "out.npz"))
    ops = {"halftone": lambda f: halftone_numba(f, 3, 1, 91, (0, 15, 30, 45), False),
           "generalized_boundaries": lambda f: soft_segmentation(f, 3, True, True),
           "sift": sift_points, "sift_500_half": lambda f: sift_points(f, 500, 0.5)}
    print(f"{len(frames)} frames at {width}x{height} ({describe(args.video)})")
    print(f"{'representation':<24} {'VRE s/frame':>12} {'vre-fast s/frame':>17} {'speed-up':>9}  agreement")
    for name, op in ops.items():
        mine, seconds = timed(op, frames)
        t_theirs, t_mine = float(np.median(theirs[f"seconds_{name}"])), float(np.median(seconds))
        vre = [theirs[f"out_{name}_{i}"] for i in range(len(frames))]
        if name == "halftone":
            same = np.mean([np.mean((a > 0.5) == (b > 0.5)) for a, b in zip(vre, mine)])
            density = np.mean([np.abs(cv2.blur(a, (3, 3)) - cv2.blur(b.astype(np.float32), (3, 3))).mean()
                               for a, b in zip(vre, mine)])
            note = f"{same:.1%} of pixels inked alike; ink density over 3x3 differs by {density:.3f} on average"
        elif name == "generalized_boundaries":
            diff = np.abs(np.stack(vre) - np.stack(mine))
            note = f"mean |diff| {diff.mean():.2e}, max {diff.max():.2e} (values in [0, 1])"
        else:
            found = []
            for a, b in zip(vre, mine):
                d = np.sqrt(((a[:, None, :2] - b[None, :, :2]) ** 2).sum(-1)) if len(a) and len(b) else None
                found.append(float((d.min(1) <= 1).mean()) if d is not None else 0.0)
            note = (f"keypoints VRE {np.mean([len(a) for a in vre]):.0f}, ours {np.mean([len(b) for b in mine]):.0f};"
                    f" {np.mean(found):.1%} of VRE's have one of ours within 1 px")
        print(f"{name:<24} {t_theirs:>12.4f} {t_mine:>17.4f} {t_theirs / t_mine:>8.1f}x  {note}")


if __name__ == "__main__":
    main()
