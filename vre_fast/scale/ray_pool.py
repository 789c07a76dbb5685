"""The cluster pool: the same work units (video x frame chunk x group) run by Ray actors, one per worker spec
(a device), each keeping a `WorkerSession` (its experts loaded) across units. A drop-in for `pool.LocalPool`:
`RayPool.run(queue, on_result, on_event)`; `coordinator.make_pool` picks it for `--ray auto|ADDRESS`.

What travels through Ray is small: a unit is a dict (video path, output directory, frame numbers), a result the
per-representation counters. Actors decode and write their frames themselves, into the output directory, which is
the only checkpoint (it must be a filesystem every node sees); nothing of a frame goes through the object store,
so nothing spills (ray#46810). Plain actors rather than Ray Data: the store resumes from its own metadata, which
Ray Data's checkpointing (its own readers and writers) knows nothing of, and an actor pool in Ray Data that asks
for every CPU deadlocks on a small node (ray#44687); an actor here asks for a fraction of a CPU.

Failures: a unit that raises, whose actor dies (a lost node, out of memory), or that runs past its deadline
(`policies.UnitDeadline`: its task is cancelled, then its actor killed), is tried again, up to MAX_ATTEMPTS times
in all (a dead or killed actor is replaced); the last attempt runs with `on_error="skip"`, so a frame
that fails every time is recorded as failed in the representation's metadata and in the unit's run record
(OUT/.logs/run-*.json) and the rest of the unit is stored; unless the run's on_error is "skip", the unit is named
in `failed_units` too (the command exits 1, as a local worker's failing frame does). A unit that fails even so
is recorded in `RayPoolStats.failed_units`, one line each, which the summary prints; the run goes on with the
other units and a rerun computes only what the metadata lacks.

Ray is imported only here, and only when the pool runs (the `ray` extra).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, VreError
from .policies import UnitDeadline
from .pool import PoolStats
from .units import UnitQueue, UnitResult, WorkUnit
from .worker import WorkerSession, WorkerSpec, describe_failure

__all__ = ["MAX_ATTEMPTS", "RayPool", "RayPoolStats", "actor_request", "connect"]

MAX_ATTEMPTS = 3  # tries of one unit, the last with on_error="skip"
CPU_ACTOR_CPUS = 0.9  # what an actor without a GPU asks of Ray: a fraction, so N actors never take a whole node
GPU_ACTOR_CPUS = 0.5  # and one with a GPU (its decode and writer threads)
LOCAL_OBJECT_STORE = 100 * 1024 * 1024  # `--ray auto`: units and results are small; Ray's default takes 30% of RAM
STOP_SECONDS = 30.0
GRACE_SECONDS = 5.0  # a unit past its deadline: how long its cancelled task may take to fold its journals
CONNECT_SECONDS = 5.0


@dataclass
class RayPoolStats(PoolStats):
    attempts_failed: int = 0  # unit attempts that raised or whose actor died, retried or not
    failed_units: list[str] = field(default_factory=list)  # units that failed MAX_ATTEMPTS times: one line each
    round_trip_seconds: list[float] = field(default_factory=list)  # per unit: submit to result, in the driver
    unit_seconds: list[float] = field(default_factory=list)  # per unit: its run, in the actor

    @property
    def overhead_seconds(self) -> float:
        """Ray's median per-unit cost: the driver's round trip less the unit's own time in the actor."""
        gaps = sorted(r - u for r, u in zip(self.round_trip_seconds, self.unit_seconds))
        return gaps[len(gaps) // 2] if gaps else 0.0


def connect(address: str, num_cpus: int | None = None) -> Callable[[], None]:
    """Joins a Ray cluster and returns what leaves it. `auto`: a private cluster of this machine, started here,
    bound to 127.0.0.1 only (Ray otherwise listens on every interface), no dashboard, torn down by the returned
    call (`num_cpus`: its CPUs, default all of this machine's); ADDRESS: an existing cluster's head (HOST:PORT,
    as `ray start --head` prints it), left running. Already connected (a caller's own ray.init): nothing."""
    if address == "auto":
        # Ray takes a loopback node address for "no address given" and resolves it to the machine's own IP
        # unless clusters are off (services.get_node_ip_address); read when ray is imported, and by Ray's child
        # processes (GCS, raylet, workers) from their environment
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray: Ray is not installed; pip install 'vre-fast[ray]' (or pip install ray)") from None
    if address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        return lambda: None
    if address == "auto":
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # ray was imported before the environment was set
        # "local": a new cluster even where RAY_ADDRESS names another one
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 _node_ip_address="127.0.0.1",
                 object_store_memory=LOCAL_OBJECT_STORE, log_to_driver=False, configure_logging=False)
        return ray.shutdown
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"--ray {address}: no Ray cluster there ({exc})") from None
    return ray.shutdown


def actor_request(spec: WorkerSpec) -> tuple[dict[str, Any], WorkerSpec]:
    """What an actor for `spec` asks Ray for, and the spec it runs: a cuda device is one GPU, which Ray picks
    and makes the actor's only visible one (cuda:0 inside it); a fraction of a CPU either way. No restarts by
    Ray: the pool replaces a dead actor itself and counts the attempt."""
    gpu = spec.device is not None and spec.device.startswith("cuda")
    request = {"num_cpus": GPU_ACTOR_CPUS if gpu else CPU_ACTOR_CPUS, "num_gpus": 1 if gpu else 0,
               "max_restarts": 0, "max_task_retries": 0}
    return request, replace(spec, device="cuda:0") if gpu else spec


def _check_reachable(address: str) -> None:
    """A HOST:PORT where nothing answers is one line at once; ray.init would retry it for minutes."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # ray://..., or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(f"--ray {address}: no Ray head answers there ({exc.strerror or exc}); start one with "
                          f"`ray start --head` and give the address it prints") from None


class _Actor:
    """One worker on the cluster: a `WorkerSession` for all the units it is given. Ray makes it an actor
    (`ray.remote(_Actor)`) on a node with the resources its options ask for."""

    def __init__(self, spec: WorkerSpec):
        os.environ.setdefault("OMP_NUM_THREADS", str(spec.kernel_threads))
        self.session, self.fatal = None, None
        try:
            self.session = WorkerSession(spec)
        except Exception as exc:  # a plugin that does not load: said by `ready`, as a local worker's "fatal"
            self.fatal = str(exc) if isinstance(exc, VreError) else f"{type(exc).__name__}: {exc}"

    def ready(self) -> str | None:
        """None, or why the worker could not start."""
        return self.fatal

    def execute(self, unit: dict[str, Any], skip_failures: bool) -> tuple[str, Any]:
        """("done", a UnitResult's dict) or ("error", the one line naming the video and frame)."""
        work = WorkUnit.from_dict(unit)
        try:
            result = self.session.execute(work, on_error="skip" if skip_failures else None)
        except Exception as exc:
            return "error", describe_failure(work, exc, Path(work.out_dir) / ".logs")
        return "done", result.to_dict()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


@dataclass
class _Slot:
    spec: WorkerSpec
    lane: str | None
    actor: Any
    started: float
    unit: WorkUnit | None = None
    ref: Any = None
    submitted: float = 0.0
    units_done: int = 0
    limit: float | None = None  # the seconds the unit may take (the deadline policy's); None: no limit


class RayPool:
    """Ray actors for `specs`, actor i serving `lanes[i]` (a group's name; None: any unit), on the cluster at
    `address` (`connect`). A spec's cuda device becomes a request for one GPU: Ray chooses which, and sets the
    actor's CUDA_VISIBLE_DEVICES, so inside the actor it is cuda:0."""

    def __init__(self, specs: list[WorkerSpec], lanes: list[str | None], address: str,
                 deadline: UnitDeadline | None = None):
        self.specs, self.lanes, self.address = specs, lanes, address
        self.deadline = deadline or UnitDeadline()
        self.stats = RayPoolStats()
        self._slots: list[_Slot] = []

    def run(self, queue: UnitQueue, on_result: Callable[[UnitResult], None],
            on_event: Callable[[str], None] = lambda line: None) -> None:
        """Executes every unit of `queue`; `on_result` sees each result, `on_event` a line per retry or lost
        actor. Returns once every unit is done or recorded as failed."""
        ours = signal.getsignal(signal.SIGTERM)
        leave = connect(self.address)
        if callable(ours) and threading.current_thread() is threading.main_thread():
            # ray.init puts its own in place (an exit at once, after its core worker's crash dump on the
            # terminal): the caller's stands, SIGTERM stopping the actors as Ctrl-C does (coordinator.py)
            signal.signal(signal.SIGTERM, ours)
        import ray

        first = time.perf_counter()
        attempts: dict[tuple, int] = {}
        remote = ray.remote(_Actor)
        try:
            self._slots = [self._start(remote, spec, lane) for spec, lane in zip(self.specs, self.lanes)]
            for fatal in ray.get([s.actor.ready.remote() for s in self._slots]):
                if fatal is not None:
                    raise VreError(fatal)
            now = time.perf_counter()
            self.stats.start_seconds = now - first
            self.stats.ready_seconds = [now - s.started for s in self._slots]
            while not queue.finished:
                self._dispatch(queue, attempts)
                busy = {s.ref: s for s in self._slots if s.ref is not None}
                if not busy:
                    raise RuntimeError(f"{queue.pending()} units wait on units that are not running")
                now = time.perf_counter()
                nearest = min((s.submitted + s.limit - now for s in busy.values() if s.limit is not None),
                              default=1.0)
                ready, _ = ray.wait(list(busy), num_returns=1, timeout=min(1.0, max(0.0, nearest)))
                for ref in ready:
                    self._collect(busy[ref], remote, queue, attempts, on_result, on_event)
                now = time.perf_counter()
                for slot in [s for s in busy.values() if s.ref is not None and s.limit is not None
                             and now >= s.submitted + s.limit]:
                    self._time_out(slot, remote, queue, attempts, on_result, on_event)
            self._stop(ray, graceful=True)
        except BaseException:
            self._stop(ray, graceful=False)
            raise
        finally:
            leave()

    def _start(self, remote: Any, spec: WorkerSpec, lane: str | None) -> _Slot:
        request, actor_spec = actor_request(spec)
        actor = remote.options(**request).remote(actor_spec)
        self.stats.workers_started += 1
        return _Slot(spec, lane, actor, time.perf_counter())

    def _dispatch(self, queue: UnitQueue, attempts: dict[tuple, int]) -> None:
        for slot in self._slots:
            if slot.unit is None:
                slot.unit = queue.take(slot.lane)
                if slot.unit is not None:
                    last = attempts.get(slot.unit.key, 0) + 1 >= MAX_ATTEMPTS
                    slot.ref = slot.actor.execute.remote(slot.unit.to_dict(), last)
                    slot.submitted = time.perf_counter()  # the actor is ready (run waits on every `ready`)
                    slot.limit = self.deadline.seconds(len(slot.unit.frames), slot.units_done == 0)

    def _time_out(self, slot: _Slot, remote: Any, queue: UnitQueue, attempts: dict[tuple, int],
                  on_result: Callable[[UnitResult], None], on_event: Callable[[str], None]) -> None:
        """A unit past its deadline: its task cancelled (a KeyboardInterrupt in the actor: its run folds its
        journals, keeping the frames it finished), the actor killed after GRACE_SECONDS and replaced, and the
        attempt counted as failed, within MAX_ATTEMPTS; a result that came as it was cancelled is taken."""
        import ray

        ray.cancel(slot.ref)
        done, _ = ray.wait([slot.ref], timeout=GRACE_SECONDS)
        if done:
            with contextlib.suppress(Exception):
                if ray.get(slot.ref)[0] == "done":
                    self._collect(slot, remote, queue, attempts, on_result, on_event)
                    return
        unit = slot.unit
        assert unit is not None
        ray.kill(slot.actor)
        self.stats.units_timed_out += 1
        self.stats.workers_lost += 1
        self._slots[self._slots.index(slot)] = self._start(remote, slot.spec, slot.lane)
        self._failed(unit, f"{unit.video}: frames {unit.frames[0]}..{unit.frames[-1] + 1} timed out after "
                           f"{slot.limit:g} s", queue, attempts, on_event)

    def _collect(self, slot: _Slot, remote: Any, queue: UnitQueue, attempts: dict[tuple, int],
                 on_result: Callable[[UnitResult], None], on_event: Callable[[str], None]) -> None:
        import ray

        unit, ref = slot.unit, slot.ref
        assert unit is not None
        slot.unit = slot.ref = None
        try:
            kind, body = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the actor (its process or its node) is gone
            kind, body = "lost", f"{unit.video}: the worker on frames {unit.frames[0]}..{unit.frames[-1] + 1} died " \
                                 f"({type(exc).__name__})"
            self.stats.workers_lost += 1
            self._slots[self._slots.index(slot)] = self._start(remote, slot.spec, slot.lane)
        if kind == "done":
            result = UnitResult.from_dict(body)
            self.stats.round_trip_seconds.append(time.perf_counter() - slot.submitted)
            self.stats.unit_seconds.append(result.seconds)
            queue.done(unit)
            self.deadline.observe(result.seconds, result.setup_seconds, result.computed_frames)
            slot.units_done += 1
            on_result(result)
            failed = {name: row["failed"] for name, row in result.representations.items() if row.get("failed")}
            if failed and slot.spec.options.on_error != "skip":  # skipped on the last attempt, not by the user's
                self.stats.failed_units.append(  # choice: stored what it could, and the command still exits 1
                    f"{unit.describe()}: {', '.join(f'{n} failed on {k} frame(s)' for n, k in failed.items())} "
                    f"on all {MAX_ATTEMPTS} attempts, recorded as failed (see {unit.out_dir}/.logs)")
            return
        self._failed(unit, body, queue, attempts, on_event)

    def _failed(self, unit: WorkUnit, body: str, queue: UnitQueue, attempts: dict[tuple, int],
                on_event: Callable[[str], None]) -> None:
        """An attempt failed (`body`, one line naming the video): the unit re-queued, or after MAX_ATTEMPTS
        recorded as failed."""
        self.stats.attempts_failed += 1
        attempts[unit.key] = attempts.get(unit.key, 0) + 1
        if attempts[unit.key] < MAX_ATTEMPTS:
            queue.give_back(unit)
            self.stats.units_requeued += 1
            on_event(f"{body}; attempt {attempts[unit.key]} of {MAX_ATTEMPTS} failed, {unit.describe()} re-queued")
            return
        line = f"{body} (after {MAX_ATTEMPTS} attempts; see {unit.out_dir}/.logs)"
        self.stats.failed_units.append(line)
        queue.done(unit)  # recorded, not dropped: a unit of a group reading these frames names what is missing
        on_event(line)

    def _stop(self, ray: Any, graceful: bool) -> None:
        """Every actor closes its session (its experts torn down, its inputs closed) and ends; stopping early, a
        running unit is cancelled first (its run folds its journals as on Ctrl-C; whatever is left unfolded, the
        next run folds)."""
        slots, self._slots = self._slots, []
        if not graceful:
            for s in slots:
                if s.ref is not None:
                    ray.cancel(s.ref)
        closing = [s.actor.close.remote() for s in slots]
        ray.wait(closing, num_returns=len(closing), timeout=STOP_SECONDS)
        for s in slots:
            ray.kill(s.actor)

