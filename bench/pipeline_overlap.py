"""How well the batch pipeline overlaps decode, compute and writes (CPU), measured in one run.

    python bench/pipeline_overlap.py [--frames 150] [--formats npz,png]

1. decode alone: every frame through the PyAV source;
2. compute alone: the graph on the decoded frames in memory (StreamGraph, no disk);
3. the pipelined `vre-fast run` of the same frames and graph, whose run record gives the writers' busy
   time (summed over the writer threads; divided by the thread count it is the write stage alone).
Prints the stages, their sequential sum, the slowest stage and the pipelined wall time: the target is
pipelined <= 1.15x the slowest stage. On few cores the stages also compete for the same cores, so
"alone" figures are lower bounds of what each stage costs inside the pipeline, and when all the work
divided by the cores exceeds the slowest stage, that quotient (the core floor) is the real lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _frames import EXAMPLE

from vre_fast import parse_config
from vre_fast.sources import VideoSource
from vre_fast.streaming import StreamGraph

GRAPH = {"batch_size": 8, "representations": {
    "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"},
    "flow": {"type": "optical_flow_classical", "parameters": {"dis_preset": "fast"}}}}
WRITERS = 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--formats", default="npz,png")
    args = parser.parse_args()
    start = time.perf_counter()
    with VideoSource(EXAMPLE) as src:
        n = min(args.frames, src.num_frames)
        frames = [f for _, f in src.read(range(n))]
    decode = time.perf_counter() - start

    without_flow = {**GRAPH, "representations": {k: v for k, v in GRAPH["representations"].items() if k != "flow"}}
    graph = StreamGraph(parse_config(without_flow))
    graph.push(frames[0])
    start = time.perf_counter()
    for f in frames:
        graph.push(f)
    from vre_fast.representation import ComputeBatch
    from vre_fast.representations.optical_flow_classical import OpticalFlowClassical  # needs t+1: timed apart

    flow = OpticalFlowClassical("flow", OpticalFlowClassical.Params(dis_preset="fast"), {},
                                type_name="optical_flow_classical")
    for i, f in enumerate(frames):
        flow.compute(ComputeBatch([i], f[None], frames[min(i + 1, n - 1)][None], {}))
    compute = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(GRAPH))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vre_fast", "run", str(EXAMPLE), "-c", str(cfg), "-o",
                        str(Path(tmp) / "out"), "--frames", f"0..{n}", "--output-formats", args.formats,
                        "--write-workers", str(WRITERS), "--no-progress"], check=True, capture_output=True)
        process = time.perf_counter() - start
        record = json.loads(next((Path(tmp) / "out" / ".logs").glob("run-*.json")).read_text())
    stages = record["stages"]
    write = stages["write_busy"] / WRITERS
    slowest = max(decode, compute, write)
    print(f"{n} frames of {EXAMPLE.name}, graph {', '.join(GRAPH['representations'])}, formats {args.formats}, "
          f"{WRITERS} writer threads; seconds")
    print(f"  decode alone {decode:.2f} | compute alone {compute:.2f} | write stage {write:.2f} "
          f"(busy {stages['write_busy']:.2f} over {WRITERS} threads, in the pipelined run)")
    print(f"  sequential sum {decode + compute + write:.2f} | slowest stage {slowest:.2f}")
    cores = os.cpu_count() or 1
    floor = max(slowest, (decode + compute + stages["write_busy"]) / cores)
    print(f"  {cores}-core floor {floor:.2f} = max(slowest stage, the stages' busy seconds / {cores} cores): about "
          f"the least wall time {cores} cores allow (writes' busy time is taken inside the contended run)")
    print(f"  pipelined: executor wall {stages['wall']:.2f} (process {process:.2f} incl. start-up) = "
          f"{stages['wall'] / floor:.2f}x the {cores}-core floor, "
          f"{stages['wall'] / slowest:.2f}x the slowest stage, {(decode + compute + write) / stages['wall']:.2f}x "
          f"faster than the sequential sum; compute waited {stages['waited_for_decode']:.2f} s for frames and "
          f"{stages['waited_for_writes']:.2f} s for the disk")


if __name__ == "__main__":
    main()
