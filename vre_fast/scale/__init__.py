"""Scaling out on one machine: units (video x frame chunk x group), worker sessions that keep their experts
loaded across units, a local process pool fed from a dependency-aware queue, representation groups, manifests
of many videos. The cluster backend (`ray_pool.py`, Ray actors; imported only with `--ray`) reuses `WorkUnit`,
`UnitQueue` and `WorkerSession` as they are and replaces only the pool (`coordinator.make_pool`)."""

from .coordinator import ScaleOptions, ScaleResult, make_pool, plan_units, run_many
from .groups import Group, resolve_groups
from .manifest import Job, jobs_for_videos, read_manifest
from .pool import LocalPool, PoolStats
from .units import UnitQueue, UnitResult, WorkUnit, make_units
from .worker import WorkerSession, WorkerSpec

__all__ = ["Group", "Job", "LocalPool", "PoolStats", "ScaleOptions", "ScaleResult", "UnitQueue", "UnitResult",
           "WorkUnit", "WorkerSession", "WorkerSpec", "jobs_for_videos", "make_pool", "make_units", "plan_units",
           "read_manifest", "resolve_groups", "run_many"]
