"""How fast vre_fast.reader feeds a training loop, against VRE 1.18.6's MultiTaskDataset and a plain np.load loop.

    python bench/reader_throughput.py [--frames 48] [--batch-size 8] [--size 960x540] [--rounds 3]

Makes (once, in bench/.cache/) a dataset of rgb + hsv + an 8-class map + normals (from a plane depth) with
`vre-fast run` from the example clip (synthetic frames without it), uncompressed npz, then measures batches/s
over full passes, the median of 3 per row (the files in the page cache: what is measured is decoding and
assembling, not the disk):

- a plain loop: np.load of each npz, stacked per batch (the floor: no decode, no tensors);
- VREDataset.batches without and with prefetch (3 batches ahead, in threads), and through a DataLoader with
  0 and 2 workers (persistent: the start-up is left out);
- VRE's MultiTaskDataset (its repository's examples/vre_reader, bench/_vre_reader/) with its collate_fn in a
  DataLoader with 0 and 2 workers, in VRE's side venv (bench/.vre-venv, made on first use, see _venvs.py);
- a training loop whose step (a sleep, as a GPU-bound step leaves the CPU free) takes as long as a batch read,
  without and with prefetch: the target is >= 1.5x with prefetch, and >= 2x VRE's reader.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from _frames import EXAMPLE, describe, example_frames
from _venvs import vre_venv

from vre_fast import RunOptions, parse_config, run
from vre_fast.kernels.normals_svd import intrinsics_from_fov
from vre_fast.reader import VREDataset
from vre_fast.sources.synthetic import write_video

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
CLASSES = 8
REPRESENTATIONS = ["rgb", "hsv", "semantic", "normals"]


def make_dataset(root: Path, frames: int, width: int, height: int) -> Path:
    """The benchmark's output directory (made once; a later call finds nothing to compute)."""
    inputs = root / "inputs"
    video = inputs / "video.mp4"
    if not video.exists():
        inputs.mkdir(parents=True, exist_ok=True)
        pictures = example_frames(EXAMPLE, frames, width, height)
        (inputs / "semantic").mkdir(exist_ok=True)
        (inputs / "depth").mkdir(exist_ok=True)
        fx, fy, cx, cy = intrinsics_from_fov(75, (3840, 2160), (width, height))
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones((height, width))], -1)
        for i, picture in enumerate(pictures):  # classes: brightness x hue bands; depth: a ground plane
            hue = cv2.cvtColor(picture, cv2.COLOR_RGB2HSV)[..., 0] // 45
            np.save(inputs / "semantic" / f"{i}.npy", (hue * 2 + (picture.mean(-1) > 128)).astype(np.uint8))
            np.save(inputs / "depth" / f"{i}.npy", ((10 + i) / np.abs(rays @ [0.0, 0.8, 0.6])).astype(np.float32))
        write_video(video, pictures)
    cfg = parse_config({"batch_size": 8, "representations": {
        "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
        "semantic": {"type": "external", "parameters": {"path": str(inputs / "semantic"),
                                                          "classes": [f"c{i}" for i in range(CLASSES)]}},
        "depth": {"type": "external", "parameters": {"path": str(inputs / "depth")}, "output_formats": []},
        "normals": {"type": "normals_svd", "dependencies": ["depth"],
                    "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 11}}}})
    run(video, cfg, root / "out", RunOptions(progress=False))
    return root / "out"


def rate(one_pass: Callable[[], Iterable[object]], step: float = 0.0) -> float:
    """Batches/s over one pass, each batch followed by a `step`-second pause (a training step)."""
    count, start = 0, time.perf_counter()
    for _batch in one_pass():
        if step:
            time.sleep(step)
        count += 1
    return count / (time.perf_counter() - start)


def medians(rows: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """The median of `rounds` measurements of each row, the rows taking turns (this shared machine's speed
    drifts: a row measured in one stretch would carry the drift of its moment)."""
    measured: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, measure in rows.items():
            measured[name].append(measure())
    return {name: float(np.median(values)) for name, values in measured.items()}


def np_load_batches(out: Path, frames: list[int], batch_size: int) -> Iterable[dict[str, np.ndarray]]:
    for i in range(0, len(frames), batch_size):
        chunk = frames[i:i + batch_size]
        yield {name: np.stack([np.load(out / name / "npz" / f"{f}.npz")["arr_0"] for f in chunk])
               for name in REPRESENTATIONS}


def vre_rate(out: Path, batch_size: int, workers: int, passes: int) -> dict:
    python = vre_venv()
    result = subprocess.run([str(python), str(HERE / "_vre_reader_worker.py"), str(out), str(batch_size),
                             str(workers), str(passes), str(CLASSES)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"VRE's reader failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the dataset per row (the median counts)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    out = make_dataset(CACHE / f"reader_{width}x{height}_{args.frames}", args.frames, width, height)
    ds = VREDataset(out, REPRESENTATIONS)
    bs, rounds = args.batch_size, args.rounds
    batches = -(-len(ds) // bs)
    mib = sum(v.numel() * v.element_size() for k, v in ds[0:bs].items() if k != "frame") / 2**20
    print(f"{len(ds)} frames at {width}x{height} ({describe(EXAMPLE)}), {REPRESENTATIONS}, batch {bs} "
          f"({mib:.0f} MiB as tensors), {batches} batches a pass, median of {rounds} passes a row")
    workers = ds.loader(bs, num_workers=2)
    list(workers)  # starts the persistent workers: their start-up is not counted
    rows = medians({
        "np.load loop (stored arrays, no decode)": lambda: rate(lambda: np_load_batches(out, ds.frames, bs)),
        "VREDataset.batches, no prefetch": lambda: rate(lambda: ds.batches(bs, prefetch=0)),
        "VREDataset.batches, prefetch 3": lambda: rate(lambda: ds.batches(bs, prefetch=3)),
        "VREDataset in a DataLoader, 0 workers": lambda: rate(ds.loader(bs).__iter__),
        "VREDataset in a DataLoader, 2 workers": lambda loader=workers: rate(loader.__iter__)}, rounds)
    del workers  # they would compete with what follows
    read = 1 / rows["VREDataset.batches, no prefetch"]
    name = f"training loop, step {read * 1000:.0f} ms (= a batch read)"
    rows.update(medians({f"{name}, no prefetch": lambda: rate(lambda: ds.batches(bs, prefetch=0), step=read),
                         f"{name}, prefetch 3": lambda: rate(lambda: ds.batches(bs, prefetch=3), step=read)}, rounds))
    for workers_count in (0, 2):
        measured = vre_rate(out, bs, workers_count, rounds)
        rows[f"VRE 1.18.6 MultiTaskDataset, DataLoader {workers_count} workers"] = measured["batches_per_s"]
    ours = max(v for k, v in rows.items() if k.startswith("VREDataset"))
    vre = max(v for k, v in rows.items() if k.startswith("VRE 1.18.6"))
    overlap = rows[f"{name}, prefetch 3"] / rows[f"{name}, no prefetch"]
    print(f"prefetch / no prefetch with the training step: {overlap:.2f}x (target 1.5x); vre-fast's best / VRE's "
          f"best: {ours / vre:.2f}x (target 2x)\n")
    print("| reader | batches/s |\n|---|---|")
    for row, value in rows.items():
        print(f"| {row} | {value:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
