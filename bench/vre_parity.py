"""Side-by-side parity: one VRE-format config run by VRE 1.18.6 and by vre-fast on the same real video.

    python bench/vre_parity.py [--video examples/bikes.mp4] [--frames 12] [--keep DIR]

The config (written below, in VRE's own format) holds what both tools compute procedurally: RGB, HSV (of RGB),
Canny and SVD normals of a depth map. VRE runs it in its side venv (bench/.vre-venv, see _venvs.py; its
`build_representations_from_cfg` and `VRE.run`, as its CLI does: bench/_vre_parity_worker.py); vre-fast loads the
same file through vre_compat (`vre-fast run --config-format vre`). Neither tool computes depth procedurally, so the
normals' depth is the same stored arrays for both (a plane receding upwards plus the blurred grey level of the
real frames): VRE reads them through a DepthRepresentation, vre-fast through an `external` node added to the
mapped config. Then every stored frame of every representation is compared in the common form (VRE's normals
(n + 1) / 2 turned back into n; VRE's Canny float32 H x W x 1 against vre-fast's uint8 H x W).

Prints per representation the max and mean absolute difference over all frames and pixels and the tolerance;
exits 1 when any exceeds its tolerance. Tolerances: RGB 0 (the same pixels: VRE decodes with the ffmpeg
binary, vre-fast with PyAV, both libavcodec's H.264 and swscale's yuv420p -> rgb24); Canny 0 (both OpenCV);
HSV 1e-6 (VRE computes in float64 then stores float32, vre-fast in float32); normals 2e-3 max on the pixels whose
window lies inside the frame (VRE and vre-fast solve the 3x3 plane fit differently: an SVD against a closed-form
eigenvector; vre_side_by_side.py measures the same) and on the border the same or both undefined.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml
from _venvs import vre_ffmpeg_dir, vre_venv

from vre_fast._config_loader import parse_config, read_config_file
from vre_fast.runner import RunOptions, run
from vre_fast.sources import VideoSource

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "examples" / "bikes.mp4"
WINDOW = 11
VRE_CONFIG = {
    "default_compute_parameters": {"batch_size": 4},
    "default_io_parameters": {"binary_format": "npz", "image_format": "not-set", "compress": False},
    "representations": {
        "rgb": {"type": "color/rgb", "dependencies": [], "parameters": {}},
        "hsv": {"type": "color/hsv", "dependencies": ["rgb"], "parameters": {}},
        "edges_canny": {"type": "edges/canny", "dependencies": [], "parameters": {
            "threshold1": 100, "threshold2": 200, "aperture_size": 3, "l2_gradient": False}},
        "normals_svd(depth)": {"type": "normals/depth-svd", "dependencies": ["depth"], "parameters": {
            "sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": WINDOW}},
    },
}
TOLERANCE = {"rgb": 0.0, "hsv": 1e-6, "edges_canny": 0.0, "normals_svd(depth)": 2e-3}


def write_depths(video: Path, n: int, folder: Path) -> None:
    """Depth maps both tools read: a plane receding towards the top of the frame plus the blurred grey level."""
    folder.mkdir(parents=True)
    with VideoSource(video) as source:
        for i, frame in enumerate(source.head(n)):
            rows = np.linspace(2.0, 1.0, frame.shape[0], dtype=np.float32)[:, None]
            grey = cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 4) / 255
            np.savez(folder / f"{i}.npz", (10 / rows + 2 * grey).astype(np.float32))


def run_vre(video: Path, cfg: Path, depths: Path, out: Path, n: int) -> None:
    python = vre_venv(ffmpeg=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{vre_ffmpeg_dir(python)}{os.pathsep}{env.get('PATH', '')}", VRE_PBAR="0")
    try:
        subprocess.run([str(python), str(HERE / "_vre_parity_worker.py"), str(video), str(cfg), str(depths), str(out),
                        str(n)], check=True, env=env, stdout=subprocess.DEVNULL)
    finally:
        video.with_suffix(".ffmpeg.log").unlink(missing_ok=True)  # VRE's video reader logs beside the video


def run_vre_fast(video: Path, cfg: Path, depths: Path, out: Path, n: int) -> None:
    mapped = read_config_file(cfg, config_format="vre")
    mapped["representations"]["depth"] = {"type": "external", "parameters": {"path": str(depths)},
                                          "output_formats": []}
    run(video, parse_config(mapped, source=str(cfg)), out, RunOptions(frames=(0, n)))


def load(folder: Path, frame: int) -> np.ndarray:
    with np.load(folder / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


def common(name: str, vre: np.ndarray, ours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs in one form (and, for the normals, only where a window fits inside the frame)."""
    if name == "edges_canny":
        return vre[..., 0].astype(np.float32), ours.astype(np.float32)
    if name.startswith("normals"):
        vre = 2 * vre.astype(np.float64) - 1
        h = WINDOW // 2
        return vre[h:-h, h:-h], ours[h:-h, h:-h].astype(np.float64)
    return vre.astype(np.float64), ours.astype(np.float64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=EXAMPLE)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--keep", type=Path, help="keep both output directories here")
    args = parser.parse_args()
    if not args.video.is_file():
        sys.exit(f"{args.video}: missing; `python examples/get_example_video.py` fetches bikes.mp4")
    tmp = Path(tempfile.mkdtemp(prefix="vre-parity-"))
    try:
        cfg = tmp / "vre.yaml"
        cfg.write_text(yaml.safe_dump(VRE_CONFIG, sort_keys=False))
        write_depths(args.video, args.frames, tmp / "depth")
        run_vre(args.video.resolve(), cfg, tmp / "depth", tmp / "vre", args.frames)
        run_vre_fast(args.video, cfg, tmp / "depth", tmp / "vre-fast", args.frames)
        with VideoSource(args.video) as source:
            size = f"{source.width}x{source.height}"
        print(f"{args.video.name} ({size}), frames 0..{args.frames}, one VRE-format config run by VRE 1.18.6 and "
              f"by vre-fast")
        print("| representation | VRE stored | vre-fast stored | max abs diff | mean abs diff | tolerance (max) | |")
        print("|---|---|---|---|---|---|---|")
        failed = False
        for name in VRE_CONFIG["representations"]:
            worst, total, count, border = 0.0, 0.0, 0, True
            for frame in range(args.frames):
                vre, ours = load(tmp / "vre" / name, frame), load(tmp / "vre-fast" / name, frame)
                if name.startswith("normals"):  # the border: the same, or undefined in vre-fast (0, 0, 0)
                    n = 2 * vre.astype(np.float64) - 1
                    border &= bool(np.all((np.abs(n - ours).max(-1) <= TOLERANCE[name]) | ~ours.any(-1)))
                a, b = common(name, vre, ours)
                diff = np.abs(a - b)
                worst, total, count = max(worst, float(diff.max())), total + float(diff.sum()), count + diff.size
            ok = worst <= TOLERANCE[name]
            failed |= not ok
            shapes = f"{vre.dtype} {list(vre.shape)} | {ours.dtype} {list(ours.shape)}"
            note = "" if not name.startswith("normals") else f" border: {'same or undefined' if border else 'differs'}"
            print(f"| {name} | {shapes} | {worst:.3g} | {total / count:.3g} | {TOLERANCE[name]:g} | "
                  f"{'ok' if ok else 'FAIL'}{note} |")
        return 1 if failed else 0
    finally:
        if args.keep is not None:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(tmp, args.keep)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
