"""`vre-fast run VIDEO... --workers N`: the videos (or a manifest's rows) cut into units, the units run by a
pool of workers into one output directory per video, one progress bar, one summary.

What a unit is and how a worker runs it are `units.py` and `worker.py`; the pool that runs them on this
machine is `pool.py`, the one on a Ray cluster `ray_pool.py`: `run_many` takes any pool with
`run(queue, on_result, on_event)`, chosen by `make_pool`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tqdm import tqdm

from .._builder import build_graph
from .._cfg import RunCfg
from ..errors import ConfigError
from ..runner import (
    RunOptions,
    bind_nodes,
    chosen_representations,
    overwrite_outputs,
    refuse_existing,
    requested_frames,
    summary_table,
    with_dependencies,
)
from ..sources import open_input
from .groups import Group, resolve_groups
from .manifest import Job
from .policies import UnitDeadline, available_cores, chunk_frames, chunk_size, threads_per_worker
from .pool import LocalPool, PoolStats
from .units import UnitQueue, UnitResult, WorkUnit, make_units
from .worker import WorkerSpec

if TYPE_CHECKING:
    from .ray_pool import RayPool

__all__ = ["ScaleOptions", "ScaleResult", "make_pool", "plan_units", "run_many"]

logger = logging.getLogger("vre_fast")


@dataclass(frozen=True)
class ScaleOptions:
    """How the work is spread (what is computed is the config and RunOptions)."""

    workers: int = 1  # worker processes per group (one group without `groups:`)
    devices: tuple[str, ...] | None = None  # the workers' devices, round robin; None: the config's
    chunk_size: int | None = None  # frames per unit; None: policies.chunk_size
    threads: int | None = None  # kernel threads per worker; None: policies.threads_per_worker
    plugins: tuple[str, ...] = ()  # --plugin files, loaded by every worker
    ray: str | None = None  # a Ray cluster's address (`auto`: a private one on this machine); None: local processes
    unit_timeout: float | None = None  # seconds a unit may run (0: no limit); None: policies.UnitDeadline's
    setup_timeout: float = UnitDeadline.setup  # more seconds for a worker's first unit (its set-up)

    def __post_init__(self) -> None:
        if self.workers < 1 or (self.chunk_size is not None and self.chunk_size < 1) or \
                (self.threads is not None and self.threads < 1):
            raise ValueError(f"workers, chunk_size and threads must be >= 1, got {self.workers}, {self.chunk_size}, "
                             f"{self.threads}")
        if (self.unit_timeout is not None and self.unit_timeout < 0) or self.setup_timeout < 0:
            raise ValueError(f"unit_timeout and setup_timeout must be >= 0, got {self.unit_timeout}, "
                             f"{self.setup_timeout}")


@dataclass
class ScaleResult:
    jobs: list[Job]
    groups: tuple[Group, ...]
    units: int
    workers: int
    chunk_sizes: list[int]
    wall: float
    frames: int  # frames requested, over all videos
    rows: dict[str, dict] = field(default_factory=dict)  # summed per representation over every unit
    pool: PoolStats = field(default_factory=PoolStats)
    unit_seconds: list[float] = field(default_factory=list)
    units_by_worker: dict[int, int] = field(default_factory=dict)  # worker index -> units it executed
    setup_seconds: float = 0.0

    def report(self) -> str:
        hung = f" ({self.pool.units_timed_out} past the unit deadline)" if self.pool.units_timed_out else ""
        lost = (f"\n{self.pool.workers_lost} worker(s) lost{hung}; {self.pool.units_requeued} unit(s) re-queued and "
                f"redone" if self.pool.workers_lost else "")
        names = ", ".join(g.name for g in self.groups)
        groups = "" if len(self.groups) == 1 else f" in {len(self.groups)} groups ({names})"
        return (f"{summary_table(self.rows)}\n{len(self.jobs)} video(s), {self.frames} frames: {self.units} units of "
                f"<= {max(self.chunk_sizes, default=0)} frames on {self.workers} worker(s){groups} in "
                f"{self.wall:.2f} s ({self.frames / self.wall:.1f} frames/s); set-up {self.setup_seconds:.2f} s in "
                f"all, worker start {self.pool.start_seconds:.2f} s" + lost + self._failed())

    @property
    def failed_units(self) -> list[str]:
        """Units a pool gave up on after its retries (ray_pool.MAX_ATTEMPTS; the local pool's with on_error
        "skip", pool.MAX_ATTEMPTS), one line each."""
        return list(getattr(self.pool, "failed_units", []))

    def _failed(self) -> str:
        return "".join(f"\nfailed: {line}" for line in self.failed_units)


def plan_units(jobs: list[Job], cfg: RunCfg, options: RunOptions, scale: ScaleOptions
               ) -> tuple[list[WorkUnit], tuple[Group, ...], list[int]]:
    """Checks the config, the groups and each video, applies `exists` (overwrite deletes once, here; raise
    refuses here) and cuts each video's frames into units; the units, the groups, the chunk sizes. A job's own
    frames win over `options.frames` / `options.frame_list`, which apply to jobs that have none."""
    graph = build_graph(cfg)
    chosen = chosen_representations(graph, options.representations)
    groups = resolve_groups(cfg, graph, tuple(n.name for n in graph.nodes if n.name in chosen))
    needed = with_dependencies(graph, chosen)
    batch = max(n.cfg.batch_size for n in needed.nodes)
    units, sizes = [], []
    for i, job in enumerate(jobs):
        whole = job.frames == (None, None) and job.frame_list is None
        job_options = options if whole else replace(options, frames=job.frames, frame_list=job.frame_list)
        with open_input(job.video, options.topic, options.fps) as source:
            frames = requested_frames(source, job_options)
            frame_size = (source.height, source.width)
        if options.exists == "overwrite":
            overwrite_outputs(job.out_dir, needed, chosen, check_devices=False)
        elif options.exists == "raise":
            stored = [b for b in bind_nodes(needed, chosen, job.out_dir, frame_size) if b.metadata is not None]
            for b in stored:
                b.metadata.peek()
            refuse_existing(stored)
        size = scale.chunk_size or chunk_size(len(frames), scale.workers, batch)
        sizes.append(size)
        units += make_units(i, str(job.video), str(job.out_dir), chunk_frames(frames, size), groups)
    return units, groups, sizes


def make_pool(cfg: RunCfg, options: RunOptions, groups: tuple[Group, ...], scale: ScaleOptions
              ) -> LocalPool | RayPool:
    """`scale.workers` local processes per group, on the group's device or the next of `scale.devices`; with
    `scale.ray`, the same workers as Ray actors (`ray_pool.RayPool`, each running a `WorkerSession`)."""
    count = scale.workers * len(groups)
    threads = scale.threads or threads_per_worker(count, available_cores())
    specs, lanes = [], []
    for group in groups:
        for _ in range(scale.workers):
            index = len(specs)
            device = group.device or (scale.devices[index % len(scale.devices)] if scale.devices else None)
            specs.append(WorkerSpec(cfg=cfg, options=options, groups=groups, device=device, plugins=scale.plugins,
                                    kernel_threads=threads, index=index))
            lanes.append(group.name)
    deadline = UnitDeadline(fixed=scale.unit_timeout, setup=scale.setup_timeout)
    if scale.ray is not None:
        from .ray_pool import RayPool

        return RayPool(specs, lanes, scale.ray, deadline)
    return LocalPool(specs, lanes, deadline)


def run_many(jobs: list[Job], cfg: RunCfg, options: RunOptions, scale: ScaleOptions) -> ScaleResult:
    """Every job's frames, computed by a pool of workers; returns the summed summary (prints nothing but the
    progress bar when `options.progress`)."""
    if not jobs:
        raise ConfigError("no videos to run")
    started = time.perf_counter()
    units, groups, sizes = plan_units(jobs, cfg, options, scale)
    by_key = {u.key: u for u in units}
    result = ScaleResult(jobs=jobs, groups=groups, units=len(units), workers=scale.workers * len(groups),
                         chunk_sizes=sizes, wall=0.0, frames=sum(len(u.frames) for u in units) // len(groups))
    bar = tqdm(total=sum(len(u.frames) for u in units), unit="frame", disable=not options.progress,
               dynamic_ncols=True, desc="frames" if len(groups) == 1 else f"frames x {len(groups)} groups")

    def on_result(unit_result: UnitResult) -> None:
        bar.update(len(by_key[unit_result.key].frames))
        result.unit_seconds.append(unit_result.seconds)
        result.units_by_worker[unit_result.worker] = result.units_by_worker.get(unit_result.worker, 0) + 1
        result.setup_seconds += unit_result.setup_seconds
        for name, row in unit_result.representations.items():
            total = result.rows.setdefault(name, {"type": row["type"], "computed": 0, "loaded": 0, "already_done": 0,
                                                  "failed": 0, "compute_seconds": 0.0})
            for key in ("computed", "loaded", "already_done", "failed", "compute_seconds"):
                total[key] += row[key]

    pool = make_pool(cfg, options, groups, scale)
    try:
        with _sigterm_interrupts():
            pool.run(UnitQueue(units, groups), on_result, on_event=logger.warning)
    finally:
        bar.close()
        result.pool = pool.stats
        result.wall = time.perf_counter() - started
    order = [n.name for n in build_graph(cfg).nodes]
    result.rows = dict(sorted(result.rows.items(), key=lambda kv: order.index(kv[0])))
    return result


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a batch scheduler's preemption) stops the pool as Ctrl-C does: every worker
    folds its journals and ends. Left at its default, it ends this process alone and the workers run on,
    writing, until their units end. Only the main thread may set a handler; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
