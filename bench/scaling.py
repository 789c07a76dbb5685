"""Scaling out on one machine: 1 vs 2 worker processes on a CPU-bound procedural graph, and what one unit (a
chunk of frames) costs besides its frames; the figures the README's scaling model is built from.

    python bench/scaling.py [--frames 96] [--size 320x180] [--json out.json]
    python bench/scaling.py --ray     # the same through Ray: left to the Ray backend (`run_through_ray`)

1. one process (`vre-fast run`, no workers): the baseline, and its decode rate and write bandwidth;
2. the pool with 1 worker, then 2 workers (chunks of --chunk-size frames from one queue): wall time (each
   worker's start and set-up included; the forkserver, started once per command, is warmed first and reported
   apart), speed-up over 1 worker, efficiency = speed-up / workers;
3. the per-unit cost: one worker session (no pool) runs the same frames as units of 4, 16 and 48 frames;
   seconds = per_unit * units + per_frame * frames, fitted; plus the cost of a unit whose frames are all on disk
   (the resume check alone), the worker's start-up (a forkserver fork to "ready") and the experts' set-up.
On 2 cores with other work on the machine the 2-worker figure is a lower bound of what 2 free cores give.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vre_fast import parse_config
from vre_fast.runner import RunOptions, run
from vre_fast.scale import Job, ScaleOptions, WorkerSession, WorkerSpec, WorkUnit, run_many
from vre_fast.scale.groups import ALL, Group
from vre_fast.scale.policies import available_cores
from vre_fast.sources import VideoSource
from vre_fast.sources.synthetic import drifting_texture, write_video

GRAPH = {"batch_size": 4, "representations": {
    "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"},
    "flow": {"type": "optical_flow_classical", "parameters": {"dis_preset": "fast"}}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--ray", action="store_true", help="the same figures through Ray (run_through_ray)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    cfg = parse_config(GRAPH)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = write_video(root / "clip.mp4", drifting_texture(args.frames, height, width), gop=12)
        if args.ray:
            figures = run_through_ray(video, cfg, root, args.chunk_size)
        else:
            figures = {"machine": {"cores": available_cores(), "load_before": os.getloadavg()[0]},
                       "video": {"frames": args.frames, "size": args.size}, "graph": list(GRAPH["representations"])}
            figures["single"] = single_process(video, cfg, root / "single")
            figures["pool"] = pool_rows(video, cfg, root, args.chunk_size, figures["single"])
            figures["per_unit"] = per_unit_cost(video, cfg, root)
            figures["machine"]["load_after"] = os.getloadavg()[0]
    print(json.dumps(figures, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))


def single_process(video: Path, cfg, out: Path) -> dict:
    """The baseline run; its decode rate (frames through the source alone) and its writers' bandwidth."""
    start = time.perf_counter()
    result = run(video, cfg, out, RunOptions())
    wall = time.perf_counter() - start
    with VideoSource(video) as source:
        t = time.perf_counter()
        for _ in source.read(range(source.num_frames)):
            pass
        decode_fps = source.num_frames / (time.perf_counter() - t)
    written = sum(p.stat().st_size for p in out.glob("*/npz/*.npz"))
    write_busy = result.stages.write_busy  # summed over the writer threads
    return {"wall_s": round(wall, 3), "frames_per_s": round(result.computed_frames / wall, 1),
            "decode_frames_per_s": round(decode_fps, 1), "bytes_written": written,
            "write_MB_per_s_per_thread": round(written / write_busy / 1e6, 1) if write_busy else None,
            "bytes_per_frame": written // result.computed_frames}


def pool_rows(video: Path, cfg, root: Path, chunk: int, single: dict) -> list[dict]:
    warm = run_many([Job(video, root / "warm-pool")], cfg, RunOptions(frames=(0, 4)), ScaleOptions(chunk_size=4))
    rows = [{"forkserver_and_first_worker_start_s": round(warm.pool.start_seconds, 3)}]  # paid once per command
    for workers in (1, 2):
        result = run_many([Job(video, root / f"pool{workers}")], cfg, RunOptions(),
                          ScaleOptions(workers=workers, chunk_size=chunk))
        rows.append({"workers": workers, "wall_s": round(result.wall, 3),
                     "frames_per_s": round(result.frames / result.wall, 1), "units": result.units,
                     "units_by_worker": result.units_by_worker, "worker_start_s": round(result.pool.start_seconds, 3),
                     "setup_s_all_workers": round(result.setup_seconds, 3)})
    for row in rows[1:]:
        speedup = rows[1]["wall_s"] / row["wall_s"]
        row["speedup_vs_1_worker"] = round(speedup, 3)
        row["efficiency"] = round(speedup / row["workers"], 3)
        row["vs_single_process"] = round(single["wall_s"] / row["wall_s"], 3)
    return rows


def per_unit_cost(video: Path, cfg, root: Path) -> dict:
    """One session, the same frames cut three ways: seconds = per_unit * units + per_frame * frames."""
    with VideoSource(video) as source:
        frames = list(range(source.num_frames))
    group = Group(ALL, tuple(GRAPH["representations"]), None)
    session = WorkerSession(WorkerSpec(cfg=cfg, options=RunOptions(), groups=(group,)))
    try:
        session.execute(WorkUnit(0, 0, ALL, str(video), str(root / "warm"), tuple(frames[:8])))  # set up, JIT
        points = []
        for size in (4, 16, 48):
            out = root / f"units{size}"
            start = time.perf_counter()
            for i in range(0, len(frames), size):
                session.execute(WorkUnit(0, i // size, ALL, str(video), str(out), tuple(frames[i:i + size])))
            points.append((len(range(0, len(frames), size)), len(frames), time.perf_counter() - start))
        start = time.perf_counter()
        for i in range(0, len(frames), 16):  # everything on disk: the check alone
            session.execute(WorkUnit(0, i // 16, ALL, str(video), str(root / "units16"), tuple(frames[i:i + 16])))
        done_unit = (time.perf_counter() - start) / len(range(0, len(frames), 16))
    finally:
        session.close()
    units = np.array([p[0] for p in points], float)
    seconds = np.array([p[2] for p in points])
    per_unit, intercept = np.polyfit(units, seconds, 1)  # the frames are the same in every point
    return {"points_units_frames_seconds": [[u, f, round(s, 3)] for u, f, s in points],
            "per_unit_s": round(float(per_unit), 4), "per_frame_s": round(float(intercept) / len(frames), 5),
            "unit_already_done_s": round(done_unit, 4),
            "run_records_per_unit": 1}


def run_through_ray(video: Path, cfg, root: Path, chunk: int) -> dict:
    """The same 1-vs-N figures with the units run by Ray actors (each a `WorkerSession`): for the Ray backend
    to implement; there is none yet."""
    sys.exit("bench/scaling.py --ray: no Ray backend yet (vre_fast.scale has the local pool only)")


if __name__ == "__main__":
    main()
