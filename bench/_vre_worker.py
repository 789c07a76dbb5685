"""Runs inside the original VRE's virtual environment (see vre_side_by_side.py); imports only VRE, NumPy, cv2.

Calls what VRE 1.18.6's HSV, Canny and DepthNormalsSVD representations compute, on the frames and depth
maps of an npz, and writes per-frame seconds, the normals' peak memory and the outputs.
"""

import sys
import time

import numpy as np
from vre_repository.color.hsv import rgb2hsv
from vre_repository.normals.depth_svd.depth_svd_impl import depths_to_normals
from vre_repository.utils.cv2_utils import cv2_Canny


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) / 1024


def main(inputs: str, outputs: str) -> None:
    data = np.load(inputs)
    frames, depths = data["frames"], data["depths"]
    ops = {
        # HSV.compute: rgb2hsv(...).astype(float32)
        "hsv": lambda i: rgb2hsv(frames[i]).astype(np.float32),
        # Canny._make_one: cv2_Canny(...) as float32 / 255
        "edges_canny": lambda i: np.float32(cv2_Canny(frames[i], threshold1=100, threshold2=200, apertureSize=3,
                                                      L2gradient=False)) / 255,
        # DepthNormalsSVD.compute: (depths_to_normals(...) + 1) / 2 as float32
        "normals_svd": lambda i: (depths_to_normals(depths[i][None], 75, 11, 1, (3840, 2160), 1)[0]
                                  .astype(np.float32) + 1) / 2,
    }
    before = vm_hwm_mib()
    results, seconds = {}, {}
    for name in ("normals_svd", "hsv", "edges_canny"):  # normals first: its peak memory is measured alone
        times = []
        for i in range(len(frames)):
            start = time.perf_counter()
            out = ops[name](i)
            times.append(time.perf_counter() - start)
            if i == 0:
                results[name] = out
        seconds[name] = np.array(times)
        if name == "normals_svd":
            normals_peak = vm_hwm_mib() - before
    np.savez(outputs, normals_peak_mib=normals_peak, **{f"out_{k}": v for k, v in results.items()},
             **{f"seconds_{k}": v for k, v in seconds.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
