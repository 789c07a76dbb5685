"""What power-loss durability costs: the same `vre-fast run` with --durability kill (the default) and power.

    python bench/durability.py [--size 960x540] [--frames 100] [--repeats 3]

RGB + HSV to npz from real footage (examples/bikes.mp4 resized, looped; synthetic frames if missing), each
setting run `--repeats` times alternately into fresh directories on this machine's disk (the temp dir),
wall time of the CLI process (start-up included) and the writers' busy seconds from the run's stage line.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import yaml
from _frames import EXAMPLE, describe, example_frames

from vre_fast.h264 import add_h264_stream

CONFIG = {"batch_size": 8, "representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}}}


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    with av.open(str(path), "w") as out:
        stream = add_h264_stream(out, 25, height, width, crf="18")
        for frame in example_frames(EXAMPLE, frames, width, height):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


def run_once(clip: Path, cfg: Path, out: Path, durability: str) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vre_fast", "run", str(clip), "-c", str(cfg), "-o", str(out),
                           "--no-progress", "--durability", durability], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    write_busy = float(re.search(r"write ([\d.]+) s over the writer threads", proc.stderr).group(1))
    return wall, write_busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip, cfg = root / "clip.mp4", root / "cfg.yaml"
        make_clip(clip, args.frames, width, height)
        cfg.write_text(yaml.safe_dump(CONFIG))
        results: dict[str, list[tuple[float, float]]] = {"kill": [], "power": []}
        for i in range(args.repeats):
            for durability in results:
                results[durability].append(run_once(clip, cfg, root / f"out-{durability}-{i}", durability))
    print(f"rgb + hsv to npz, {args.frames} frames at {args.size}, {describe(EXAMPLE)}; median of {args.repeats}\n")
    print("| --durability | wall s | writers busy s | wall vs kill |")
    print("|---|---|---|---|")
    kill_wall = statistics.median(w for w, _ in results["kill"])
    for durability, runs in results.items():
        wall, busy = statistics.median(w for w, _ in runs), statistics.median(b for _, b in runs)
        print(f"| {durability} | {wall:.2f} | {busy:.2f} | {wall / kill_wall:.2f}x |")


if __name__ == "__main__":
    main()
