"""vre-fast vs the original VRE (PyPI video-representations-extractor 1.18.6) on the same frames.

    python bench/vre_side_by_side.py [--frames 3] [--size 960x540] [--video examples/bikes.mp4]

Installs VRE into its own virtual environment on first use (bench/.vre-venv: torch==2.13.0, then the
package with --no-deps, then its light dependencies), then runs the RGB/HSV/Canny/normals-from-a-given-
depth graph in both: VRE's code in that environment, vre-fast's kernels here. Frames come from the video
(resized to --size; a synthetic clip if the file is missing), depth is a two-plane scene with sensor
noise and a hole. Prints seconds per frame of both, the speed-up, the peak memory of the normals and the
largest difference between the outputs (normals compared where VRE's definition is valid: windows
without invalid depth; VRE feeds zero depth into its fits as points at the camera centre).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _frames import EXAMPLE, describe, example_frames
from _venvs import side_venv

from vre_fast.kernels.hsv import hsv_numba
from vre_fast.kernels.normals_svd import intrinsics_from_fov, normals_svd_numba

HERE = Path(__file__).parent
VENV = HERE / ".vre-venv"
WINDOW, FOV, SENSOR = 11, 75, (3840, 2160)


def inputs(video: Path, n: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    frames = np.stack(example_frames(video, n, width, height))
    rng = np.random.default_rng(0)
    fx, fy, cx, cy = intrinsics_from_fov(FOV, SENSOR, (width, height))
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones((height, width))], -1)
    ground, wall = np.array([0.0, 0.8, 0.6]), np.array([0.6, -0.2, 0.77])
    depths = []
    for i in range(len(frames)):
        d = np.where(u < width // 2, (10 + i) / np.abs(rays @ ground), 20 / np.abs(rays @ wall))
        d = (d * (1 + rng.normal(0, 1e-3, d.shape))).astype(np.float32)
        d[height // 4: height // 4 + 20, width // 4: width // 4 + 40] = 0
        depths.append(d)
    return frames, np.stack(depths)


def ours(frames: np.ndarray, depths: np.ndarray) -> tuple[dict, dict]:
    intr = intrinsics_from_fov(FOV, SENSOR, (frames.shape[2], frames.shape[1]))
    ops = {"hsv": lambda i: hsv_numba(frames[i]),
           "edges_canny": lambda i: cv2.Canny(frames[i], 100, 200, apertureSize=3, L2gradient=False) // 255,
           "normals_svd": lambda i: normals_svd_numba(depths[i], intr, WINDOW)}
    results, seconds = {}, {}
    for name, op in ops.items():
        op(0)  # JIT warm-up (cached on disk after the first run)
        times = []
        for i in range(len(frames)):
            start = time.perf_counter()
            out = op(i)
            times.append(time.perf_counter() - start)
            results.setdefault(name, out)
        seconds[name] = np.array(times)
    return results, seconds


def normals_peak_mib(depth: np.ndarray) -> float:
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f.name, depth)
        intr = intrinsics_from_fov(FOV, SENSOR, (depth.shape[1], depth.shape[0]))
        code = ("import numpy as np; from vre_fast.kernels.normals_svd import normals_svd_numba as n; "
                "hwm = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]); "
                f"d = np.load({f.name!r}); n(d[:16, :16], {intr}, {WINDOW}); b = hwm(); n(d, {intr}, {WINDOW}); "
                "print((hwm() - b) / 1024)")
        return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--video", type=Path, default=EXAMPLE)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    python = side_venv(VENV, "vre_repository.normals.depth_svd", [
        ["torch==2.13.0"], ["--no-deps", "video-representations-extractor==1.18.6"],
        ["numpy", "pyyaml", "opencv-python-headless", "tqdm", "overrides", "loggez", "Pillow", "graphviz", "av"]])
    frames, depths = inputs(args.video, args.frames, width, height)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", frames=frames, depths=depths)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([str(python), str(HERE / "_vre_worker.py"), str(Path(tmp) / "in.npz"),
                        str(Path(tmp) / "out.npz")], check=True, env=env)
        theirs = dict(np.load(Path(tmp) / "out.npz"))
    mine, my_seconds = ours(frames, depths)

    valid = cv2.erode((depths[0] > 0).astype(np.uint8), np.ones((WINDOW, WINDOW), np.uint8)).astype(bool)
    vre_normals = 2 * theirs["out_normals_svd"] - 1
    cos = np.clip(np.sum(vre_normals[valid] * mine["normals_svd"][valid], -1), -1, 1)
    diffs = {
        "hsv": float(np.abs(theirs["out_hsv"] - mine["hsv"]).max()),
        "edges_canny": float(np.abs(theirs["out_edges_canny"] - mine["edges_canny"]).max()),
        "normals_svd": float(np.abs(vre_normals[valid] - mine["normals_svd"][valid]).max()),
    }
    print(f"{len(frames)} frames at {width}x{height} ({describe(args.video)}), "
          f"normals window {WINDOW}, fov {FOV}, sensor {SENSOR}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '<unset>')}")
    print(f"{'representation':<14} {'VRE s/frame':>12} {'vre-fast s/frame':>17} {'speed-up':>9} {'max |diff|':>11}")
    total_theirs = total_mine = 0.0
    for name in ("hsv", "edges_canny", "normals_svd"):
        t_theirs, t_mine = float(np.median(theirs[f"seconds_{name}"])), float(np.median(my_seconds[name]))
        total_theirs, total_mine = total_theirs + t_theirs, total_mine + t_mine
        print(f"{name:<14} {t_theirs:>12.4f} {t_mine:>17.5f} {t_theirs / t_mine:>8.0f}x {diffs[name]:>11.2e}")
    print(f"{'graph total':<14} {total_theirs:>12.4f} {total_mine:>17.5f} {total_theirs / total_mine:>8.0f}x")
    print(f"normals on valid windows: mean angle between VRE and vre-fast "
          f"{np.degrees(np.arccos(cos)).mean():.4f} deg over {valid.sum()} pixels")
    mine_peak = normals_peak_mib(depths[0])
    print(f"normals peak memory: VRE {float(theirs['normals_peak_mib']):.0f} MiB, vre-fast {mine_peak:.0f} MiB "
          f"({float(theirs['normals_peak_mib']) / max(mine_peak, 1):.0f}x less)")


if __name__ == "__main__":
    main()
