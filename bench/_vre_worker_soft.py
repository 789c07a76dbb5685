"""Runs inside the original VRE's virtual environment (see vre_soft_representations.py); imports only VRE,
NumPy, PIL and torch.

Calls what VRE 1.18.6's python-halftone, generalized-boundaries and SIFT representations compute per frame
(their `_make_one_image`, `soft_seg` and `computeKeypointsAndDescriptors`, as their `compute` does), with
the parameters of VRE's own end-to-end test config, on the frames of an npz; writes outputs and seconds.
"""

import sys
import time

import numpy as np
import torch
from PIL import Image
from vre_repository.descriptor.sift import computeKeypointsAndDescriptors
from vre_repository.soft_segmentation.generalized_boundaries.gb_impl.softseg import soft_seg
from vre_repository.soft_segmentation.halftone import Halftone

HALFTONE = dict(sample=3, scale=1, percentage=91, angles=[0, 15, 30, 45], antialias=False)


def main(inputs: str, outputs: str) -> None:
    frames = np.load(inputs)["frames"]
    h, w = frames.shape[1:3]
    halftone = Halftone(name="halftone", resolution=(h, w), **HALFTONE)

    def gb(frame: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(frame[None]).float().permute(0, 3, 1, 2) / 255
        return soft_seg(x, use_median_filtering=True, as_image=True, max_channels=3)[0].permute(1, 2, 0).numpy()

    def sift(frame: np.ndarray, **kwargs) -> np.ndarray:
        kps, _ = computeKeypointsAndDescriptors(np.array(Image.fromarray(frame).convert("L")), **kwargs)
        return np.array([(kp.pt[1], kp.pt[0], kp.response) for kp in kps]).reshape(-1, 3)  # i, j, response

    ops = {"halftone": halftone._make_one_image, "generalized_boundaries": gb, "sift": sift,
           "sift_500_half": lambda f: sift(f, max_keypoints=500, process_scale=0.5)}
    results, seconds = {}, {}
    for name, op in ops.items():
        times = []
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            results[f"out_{name}_{i}"] = op(frame)
            times.append(time.perf_counter() - start)
        seconds[f"seconds_{name}"] = np.array(times)
    np.savez(outputs, **results, **seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
