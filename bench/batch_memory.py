"""Peak memory and throughput of `vre-fast run` against video length: memory must stay flat.

    python bench/batch_memory.py [--size 480x270] [--lengths 100,400]

Each run is a separate process on a synthetic video (made here, not downloaded); peak RSS is that
process's VmHWM. Printed as a table; the ratio column compares with the shortest video.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from vre_fast.sources.synthetic import drifting_texture, write_video

CONFIG = {"batch_size": 8, "output_formats": ["npz"], "representations": {
    "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
    "edges": {"type": "edges_canny"}, "flow": {"type": "optical_flow_classical", "parameters": {"dis_preset": "fast"}},
}}


def measure(video: Path, cfg: Path, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-c", "import sys; from vre_fast.cli import main; rc = main(sys.argv[1:]); "
           "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1], file=sys.stderr); "
           "sys.exit(rc)",
           "run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--lengths", default="100,400")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    lengths = [int(n) for n in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = root / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(CONFIG))
        rows = []
        for n in lengths:
            video = root / f"v{n}.mp4"
            write_video(video, drifting_texture(n, height, width))
            wall, rss = measure(video, cfg, root / f"out{n}")
            rows.append((n, wall, n / wall, rss))
    print(f"graph: {', '.join(CONFIG['representations'])} at {width}x{height}, batch 8, npz")
    print(f"{'frames':>7} {'wall s':>8} {'frames/s':>9} {'peak RSS MiB':>13} {'RSS vs first':>13}")
    for n, wall, fps, rss in rows:
        print(f"{n:>7} {wall:>8.2f} {fps:>9.1f} {rss:>13.1f} {rss / rows[0][3]:>13.2f}")


if __name__ == "__main__":
    main()
