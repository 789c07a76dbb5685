"""Scaling out on one machine: 1 vs 2 worker processes on a CPU-bound procedural graph, and what one unit (a
chunk of frames) costs besides its frames; the figures the README's scaling model is built from.

    python bench/scaling.py [--frames 160] [--size 640x360] [--json out.json]
    python bench/scaling.py --ray     # the same 1 vs 2 workers as Ray actors, and Ray's per-unit overhead

1. one process (`vre-fast run`, no workers): the baseline, and its decode rate and write bandwidth;
2. the pool with 1 worker, then 2 workers (chunks of --chunk-size frames from one queue): wall time (each
   worker's start and set-up included; the forkserver, started once per command, is warmed first and reported
   apart), speed-up over 1 worker, efficiency = speed-up / workers;
3. the per-unit cost: 1 worker with chunks of 8 frames against one chunk of all; a unit whose frames are all on
   disk (the resume check alone); the experts' set-up per worker.
With --ray: a private Ray cluster of this machine (`--ray auto`: loopback only), its start-up; 1 and 2 workers
as local processes and as Ray actors on the same chunks; Ray's per-unit overhead, the median of (the driver's
submit-to-result time - the unit's own time in the actor) over every unit, and the round trip of an empty actor
call (Ray's dispatch alone); the cores Ray's own processes keep busy while the cluster idles (after its start,
before the runs).
Pool rows are the best of 2 runs; `machine_busy_cores` is the whole machine's (other processes' too).
On 2 cores with other work on the machine the 2-worker figure is a lower bound of what 2 free cores give.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from vre_fast import parse_config
from vre_fast.runner import RunOptions, run
from vre_fast.scale import Job, ScaleOptions, WorkerSession, WorkerSpec, WorkUnit, run_many
from vre_fast.scale.groups import ALL, Group
from vre_fast.scale.policies import available_cores, chunk_size
from vre_fast.sources import VideoSource
from vre_fast.sources.synthetic import drifting_texture, write_video

GRAPH = {"batch_size": 4, "representations": {
    "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"},
    "flow": {"type": "optical_flow_classical", "parameters": {"dis_preset": "fast"}}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=160)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--chunk-size", type=int, help="frames per unit (default: the chunk policy's for 2 workers)")
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
            figures["per_unit"] = per_unit_cost(video, cfg, root, args.frames)
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
    shutil.rmtree(out)
    return {"frames": result.computed_frames, "wall_s": round(wall, 3),
            "frames_per_s": round(result.computed_frames / wall, 1),
            "decode_frames_per_s": round(decode_fps, 1), "bytes_written": written,
            "write_MB_per_s_per_thread": round(written / write_busy / 1e6, 1) if write_busy else None,
            "bytes_per_frame": written // result.computed_frames}


def busy_cores() -> float:
    """Busy CPU seconds of the whole machine so far (every process: on a shared machine, others' too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def pooled(video: Path, cfg, out: Path, workers: int, chunk: int | None, repeats: int = 2,
           ray: str | None = None) -> dict:
    """The best of `repeats` pool runs into a fresh `out`: wall, units, the machine's busy cores meanwhile
    (`ray`: the pool's workers are Ray actors on that cluster)."""
    best = None
    for _ in range(repeats):
        cpu = busy_cores()
        result = run_many([Job(video, out)], cfg, RunOptions(),
                          ScaleOptions(workers=workers, chunk_size=chunk, ray=ray))
        cores = (busy_cores() - cpu) / result.wall
        shutil.rmtree(out)
        if best is None or result.wall < best[0].wall:
            best = result, cores
    result, cores = best
    row = {"workers": workers, "wall_s": round(result.wall, 3), "frames_per_s": round(result.frames / result.wall, 1),
           "units": result.units, "chunk_frames": max(result.chunk_sizes), "units_by_worker": result.units_by_worker,
           "setup_s_all_workers": round(result.setup_seconds, 3), "machine_busy_cores": round(cores, 2)}
    if ray is not None:
        row["actors_start_s"] = round(result.pool.start_seconds, 3)
        row["ray_overhead_per_unit_s"] = round(result.pool.overhead_seconds, 4)
    return row


def pool_rows(video: Path, cfg, root: Path, chunk: int | None, single: dict) -> list[dict]:
    """1 and 2 workers on the same chunks (the chunk policy's for 2 workers unless --chunk-size)."""
    warm = run_many([Job(video, root / "warm-pool")], cfg, RunOptions(frames=(0, 4)), ScaleOptions(chunk_size=4))
    chunk = chunk or chunk_size(single["frames"], 2, GRAPH["batch_size"])
    rows = [{"forkserver_and_first_worker_start_s": round(warm.pool.start_seconds, 3)}]  # paid once per command
    rows += [pooled(video, cfg, root / f"pool{w}", w, chunk) for w in (1, 2)]
    for row in rows[1:]:
        speedup = rows[1]["wall_s"] / row["wall_s"]
        row["speedup_vs_1_worker"] = round(speedup, 3)
        row["efficiency"] = round(speedup / row["workers"], 3)
        row["vs_single_process"] = round(single["wall_s"] / row["wall_s"], 3)
    return rows


def per_unit_cost(video: Path, cfg, root: Path, frames: int) -> dict:
    """What a unit costs besides its frames: 1 worker, chunks of 8 against one chunk of every frame
    ((wall_8 - wall_all) / (units_8 - 1): the run record, the journals opened and folded, the seek to the chunk's
    keyframe, the pipeline filling and draining); and a unit whose frames are all on disk (the resume check)."""
    small = pooled(video, cfg, root / "small", 1, 8)
    whole = pooled(video, cfg, root / "whole", 1, frames)
    group = Group(ALL, tuple(GRAPH["representations"]), None)
    session = WorkerSession(WorkerSpec(cfg=cfg, options=RunOptions(), groups=(group,)))
    try:
        unit = WorkUnit(0, 0, ALL, str(video), str(root / "done"), tuple(range(8)))
        session.execute(unit)
        start = time.perf_counter()
        for _ in range(10):
            session.execute(unit)
        done_unit = (time.perf_counter() - start) / 10
    finally:
        session.close()
    return {"chunks_of_8": small, "one_chunk": whole,
            "per_unit_s": round((small["wall_s"] - whole["wall_s"]) / (small["units"] - 1), 4),
            "unit_already_done_s": round(done_unit, 4)}


def run_through_ray(video: Path, cfg, root: Path, chunk: int | None) -> dict:
    """1 vs 2 workers as local processes and as Ray actors (each a `WorkerSession`) on the same chunks, on a
    private Ray cluster of this machine started once (its start-up reported apart); Ray's per-unit overhead."""
    from vre_fast.scale.ray_pool import connect

    with VideoSource(video) as source:
        frames = source.num_frames
    chunk = chunk or chunk_size(frames, 2, GRAPH["batch_size"])
    figures = {"machine": {"cores": available_cores(), "load_before": os.getloadavg()[0]},
               "video": {"frames": frames}, "graph": list(GRAPH["representations"]), "chunk_frames": chunk}
    local = [pooled(video, cfg, root / f"local{w}", w, chunk) for w in (1, 2)]
    start = time.perf_counter()
    leave = connect("auto")
    figures["ray_start_s"] = round(time.perf_counter() - start, 3)
    try:
        import ray

        cpu, t = _children_cpu(), time.perf_counter()
        time.sleep(3.0)  # Ray's own processes settle (it starts idle workers ahead); what they cost meanwhile
        figures["ray_processes_busy_cores_idle_3s"] = round((_children_cpu() - cpu) / (time.perf_counter() - t), 2)
        rows = [pooled(video, cfg, root / f"ray{w}", w, chunk, ray="auto") for w in (1, 2)]
        figures["empty_actor_call_round_trip_s"] = round(_empty_call(ray), 5)
    finally:
        leave()
    for row in (*local, *rows):
        row["speedup_vs_1_worker"] = round((local if row in local else rows)[0]["wall_s"] / row["wall_s"], 3)
    figures["local"], figures["ray"] = local, rows
    figures["ray_vs_local_wall"] = [round(r["wall_s"] / lo["wall_s"], 3) for r, lo in zip(rows, local)]
    figures["machine"]["load_after"] = os.getloadavg()[0]
    return figures


def _children_cpu() -> float:
    """CPU seconds used so far by this process's descendants (a private Ray cluster's GCS, raylet, workers)."""
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
        if pid != os.getpid():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            except (OSError, IndexError):
                pass
    return total


def _empty_call(ray, calls: int = 200) -> float:
    """The median round trip of an actor method that does nothing: Ray's dispatch, submit to result."""

    @ray.remote(num_cpus=0.1)
    class Empty:
        def call(self) -> None:
            return None

    actor = Empty.remote()
    ray.get(actor.call.remote())
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        ray.get(actor.call.remote())
        times.append(time.perf_counter() - t)
    ray.kill(actor)
    return sorted(times)[calls // 2]

if __name__ == "__main__":
    main()
