"""The local pool: worker processes on this machine, each serving one lane (a group), fed units one at a time
from a `UnitQueue` as each becomes idle, so fast workers take more chunks and all finish close together.

Mechanism only: what the units are, how large, and how many threads a worker has are decided by the caller
(`coordinator.py`, `policies.py`). Workers start from a forkserver (a worker forked from a process that has run
numba's OpenMP kernels aborts inside them; the reader's workers do the same, reader/dataset.py), with the
runtime imported once in the server so each starts in a fraction of a second.

A worker that dies (SIGKILL, out of memory) has its unit given back to the queue and is replaced; so has one
whose unit runs past its deadline (a hang: a stuck decoder, CUDA call or lock), which the pool interrupts
(SIGINT: the unit's run folds its journals, keeping its finished frames), then kills after GRACE_SECONDS; how
long a unit may take is a policy's (`policies.UnitDeadline`). A unit that loses MAX_ATTEMPTS workers stops the
run by name (with on_error "skip": is recorded in `PoolStats.failed_units`,
the run goes on with the other units, as the Ray pool's does). A unit's error (a bad frame, a full disk) stops
every worker and is raised as a VreError, one line. Ctrl-C (SIGINT to this process) is passed to every worker,
which folds its journals and exits; stragglers are killed after STOP_SECONDS.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from ..errors import VreError
from .policies import UnitDeadline
from .units import UnitQueue, UnitResult, WorkUnit
from .worker import WorkerSpec, serve

__all__ = ["LocalPool", "PoolStats"]

MAX_ATTEMPTS = 3  # a unit whose worker died this many times is not tried again
STOP_SECONDS = 30.0  # how long a stopping worker may take to fold its journals before it is killed
GRACE_SECONDS = 5.0  # how long a worker past its unit's deadline may take to fold its journals (SIGINT) before SIGKILL
PRELOAD = ["vre_fast.scale.worker", "vre_fast.representations"]


@dataclass
class PoolStats:
    workers_started: int = 0
    workers_lost: int = 0  # died without being asked to (their units were re-queued)
    units_requeued: int = 0
    units_timed_out: int = 0  # units whose worker was killed for running past the deadline (counted as lost too)
    start_seconds: float = 0.0  # from the first start to the first worker's "ready" (forkserver and imports)
    ready_seconds: list[float] = field(default_factory=list)  # each worker's start-to-ready seconds
    failed_units: list[str] = field(default_factory=list)  # with on_error "skip": units that killed MAX_ATTEMPTS


@dataclass
class _Worker:
    spec: WorkerSpec
    lane: str | None
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started: float
    unit: WorkUnit | None = None
    units_done: int = 0
    limit: float | None = None  # the seconds the unit may take (the deadline policy's)
    deadline: float | None = None  # time.monotonic() by which the unit must be done; None: not started or no limit


class LocalPool:
    """Processes for `specs`, worker i serving `lanes[i]` (a group's name; None: any unit)."""

    def __init__(self, specs: list[WorkerSpec], lanes: list[str | None], deadline: UnitDeadline | None = None):
        self.specs, self.lanes = specs, lanes
        self.deadline = deadline or UnitDeadline()
        self.stats = PoolStats()
        self._context = multiprocessing.get_context("forkserver")
        _quiet_resource_tracker()
        self._context.set_forkserver_preload(PRELOAD)
        self._workers: list[_Worker] = []

    def run(self, queue: UnitQueue, on_result: Callable[[UnitResult], None],
            on_event: Callable[[str], None] = lambda line: None) -> None:
        """Executes every unit of `queue`; `on_result` sees each result as it comes, `on_event` a line per
        lost worker. Returns once all are done; raises a unit's VreError, or KeyboardInterrupt after stopping
        every worker."""
        first = time.perf_counter()
        attempts: dict[tuple, int] = {}
        try:
            self._workers = [self._start(spec, lane) for spec, lane in zip(self.specs, self.lanes)]
            while not queue.finished:
                self._dispatch(queue)
                if not any(w.unit for w in self._workers):
                    raise RuntimeError(f"{queue.pending()} units wait on units that are not running")
                for worker in self._ready_workers():
                    if self._receive(worker, queue, on_result, first):
                        continue
                    self._lost(worker, queue, attempts, on_event)
                for worker in self._expired():
                    self._time_out(worker, queue, attempts, on_result, on_event, first)
            self._stop(signal_first=False)
        except BaseException:
            self._stop(signal_first=True)
            raise

    def _start(self, spec: WorkerSpec, lane: str | None) -> _Worker:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=serve, args=(theirs, spec, os.getpid()),
                                        name=f"vre-fast-worker-{spec.index}", daemon=True)
        process.start()
        theirs.close()
        self.stats.workers_started += 1
        return _Worker(spec, lane, process, mine, time.perf_counter())

    def _dispatch(self, queue: UnitQueue) -> None:
        for worker in self._workers:
            if worker.unit is None:
                worker.unit = queue.take(worker.lane)
                if worker.unit is not None:
                    worker.conn.send(worker.unit.to_dict())
                    worker.limit = self.deadline.seconds(len(worker.unit.frames), worker.units_done == 0)
                    self._start_clock(worker)

    def _start_clock(self, worker: _Worker) -> None:
        """The unit's deadline: from its sending, and again from the worker's "ready" when it was sent to a
        worker still starting (its imports and plugins are not the unit's time; a start that hangs is caught
        all the same)."""
        if worker.unit is not None and worker.limit is not None:
            worker.deadline = time.monotonic() + worker.limit

    def _ready_workers(self) -> list[_Worker]:
        by_handle = {}
        for w in self._workers:
            by_handle[w.conn] = w
            by_handle[w.process.sentinel] = w
        now = time.monotonic()
        nearest = min((w.deadline - now for w in self._workers if w.deadline is not None), default=1.0)
        ready = wait(list(by_handle), timeout=min(1.0, max(0.0, nearest)))
        return list({id(by_handle[r]): by_handle[r] for r in ready}.values())

    def _receive(self, worker: _Worker, queue: UnitQueue, on_result: Callable[[UnitResult], None],
                 first: float) -> bool:
        """Handles what the worker sent; False when it is gone (its pipe closed)."""
        while worker.conn.poll():
            try:
                kind, *body = worker.conn.recv()
            except (EOFError, OSError):
                return False
            if kind == "ready":
                now = time.perf_counter()
                self.stats.ready_seconds.append(now - worker.started)
                if len(self.stats.ready_seconds) == 1:
                    self.stats.start_seconds = now - first
                self._start_clock(worker)
            elif kind == "done":
                result = UnitResult.from_dict(body[0])
                assert worker.unit is not None and result.key == worker.unit.key
                queue.done(worker.unit)
                self.deadline.observe(result.seconds, result.setup_seconds, result.computed_frames)
                worker.unit, worker.deadline = None, None
                worker.units_done += 1
                on_result(result)
            else:  # "error" (a unit's) or "fatal" (the worker could not start): the run stops
                raise VreError(body[-1])
        return worker.process.is_alive() or worker.conn.poll()

    def _expired(self) -> list[_Worker]:
        now = time.monotonic()
        return [w for w in self._workers if w.deadline is not None and w.deadline <= now]

    def _time_out(self, worker: _Worker, queue: UnitQueue, attempts: dict[tuple, int],
                  on_result: Callable[[UnitResult], None], on_event: Callable[[str], None], first: float) -> None:
        """A unit past its deadline: its worker interrupted (its run folds its journals: the frames it finished
        are kept), killed after GRACE_SECONDS, and then lost as a dead worker is (the unit re-queued, counted
        toward MAX_ATTEMPTS); a result it sent just before is taken, not redone."""
        with contextlib.suppress(OSError):
            os.kill(worker.process.pid, signal.SIGINT)
        worker.process.join(GRACE_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        self._receive(worker, queue, on_result, first)  # a result sent as it was stopped: not redone
        if worker.unit is not None:
            self.stats.units_timed_out += 1
        self._lost(worker, queue, attempts, on_event, f"timed out after {worker.limit or 0:g} s")

    def _lost(self, worker: _Worker, queue: UnitQueue, attempts: dict[tuple, int],
              on_event: Callable[[str], None], why: str | None = None) -> None:
        """A worker died (or, `why`, was killed): its unit back to the queue (or the run stops after
        MAX_ATTEMPTS), a new one started."""
        worker.process.join()
        code = worker.process.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        what = why or f"died ({how})"
        self._workers.remove(worker)
        worker.conn.close()
        self.stats.workers_lost += 1
        unit = worker.unit
        if unit is not None:
            attempts[unit.key] = attempts.get(unit.key, 0) + 1
            if attempts[unit.key] >= MAX_ATTEMPTS:
                last = why or f"by {how}"
                line = (f"{unit.describe()}: {MAX_ATTEMPTS} workers {'lost' if why else 'died'} on these frames "
                        f"(the last {last}); see {unit.out_dir}/.logs")
                if worker.spec.options.on_error != "skip":
                    raise VreError(line)
                self.stats.failed_units.append(line)  # the other units go on; the summary names this one
                queue.done(unit)  # a unit of a group reading these frames records them as failed
                on_event(f"worker {worker.spec.index} {what}; {unit.describe()} given up")
            else:
                queue.give_back(unit)
                self.stats.units_requeued += 1
                on_event(f"worker {worker.spec.index} {what}; {unit.describe()} re-queued")
        else:
            on_event(f"worker {worker.spec.index} {what}")
        if queue.pending(worker.lane):
            self._workers.append(self._start(worker.spec, worker.lane))

    def _stop(self, signal_first: bool) -> None:
        """Every worker ends: asked (None) when the run is done, interrupted (SIGINT: the unit's run folds its
        journals) when it is stopping early; killed if it has not ended after STOP_SECONDS."""
        for w in self._workers:
            if not w.process.is_alive():
                continue
            try:
                if signal_first:
                    os.kill(w.process.pid, signal.SIGINT)
                else:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + STOP_SECONDS
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []


def _quiet_resource_tracker() -> None:
    """A worker's locks (tqdm's, numba's) are named semaphores of the forkserver context, registered with this
    process's resource tracker; a worker SIGKILLed leaves them to the tracker, which unlinks them and warns of
    "leaked semaphore objects" on the terminal as the command ends: noise after the one error line. The tracker
    starts with this process's environment, so its warning is filtered there (and only that one)."""
    quiet = "ignore:resource_tracker:UserWarning:multiprocessing.resource_tracker"
    current = os.environ.get("PYTHONWARNINGS", "")
    if quiet not in current.split(","):
        os.environ["PYTHONWARNINGS"] = f"{current},{quiet}" if current else quiet
