"""A worker: a session that executes work units one after another, keeping between them what is costly to
make (each video's decoder, the graph, its experts set up: `runner.RunSession`), and reports each unit's
result. `WorkerSession` is the part a cluster actor (Ray) reuses as is; `serve` is the loop of a local worker
process (`pool.py`), speaking to the coordinator over a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from .._cfg import RunCfg
from ..errors import VreError, describe_os_error
from ..runner import RunOptions, RunSession, run, summary_rows
from .groups import Group
from .units import UnitResult, WorkUnit

__all__ = ["WorkerSpec", "WorkerSession", "serve"]

logger = logging.getLogger("vre_fast")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is: the same for all its units (picklable: sent once, when it starts)."""

    cfg: RunCfg
    options: RunOptions  # the run's options; each unit replaces the frames and the representations
    groups: tuple[Group, ...]
    device: str | None = None  # every representation's device in this worker (a group's device wins); None: theirs
    plugins: tuple[str, ...] = ()  # --plugin files, loaded once as the worker starts
    kernel_threads: int = 1  # numba / BLAS threads (scale.policies.threads_per_worker)
    index: int = 0


class WorkerSession:
    """Executes units of one spec, in one process; the graph and the decoders stay open until `close`."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.session = RunSession()
        self._groups = {g.name: g for g in spec.groups}
        if spec.plugins:
            from ..plugins import load_plugins

            load_plugins(spec.plugins)

    def execute(self, unit: WorkUnit, on_error: str | None = None) -> UnitResult:
        """One unit: a run of its group's representations over its frames into its output directory (the
        frames already there are skipped; another group's outputs are read back, never computed). `on_error`:
        the run's unless given (a cluster's last attempt at a unit skips and records its failing frames)."""
        group = self._groups[unit.group]
        options = replace(self.spec.options, frames=(None, None), frame_list=unit.frames,
                          on_error=on_error or self.spec.options.on_error,
                          representations=group.representations, read_only=group.read_only, exists="skip",
                          progress=False, kernel_threads=self.spec.kernel_threads)
        started = time.perf_counter()
        result = run(unit.video, self._cfg_for(group), unit.out_dir, options, self.session)
        if result.record is not None:
            rows = result.record.representations
        else:  # every frame was on disk already
            rows = summary_rows([b for b in result.bindings if b.metadata is not None],
                                dict.fromkeys(group.representations, len(unit.frames)))
            for row in rows.values():
                row["setup_seconds"] = 0.0
        return UnitResult(unit.key, result.computed_frames, rows, time.perf_counter() - started,
                          sum(r["setup_seconds"] for r in rows.values()), self.spec.index)

    def _cfg_for(self, group: Group) -> RunCfg:
        device = group.device or self.spec.device
        if device is None:
            return self.spec.cfg
        return replace(self.spec.cfg, representations=tuple(replace(r, device=device)
                                                            for r in self.spec.cfg.representations))

    def close(self) -> None:
        self.session.close()


def describe_failure(unit: WorkUnit, exc: BaseException, log_dir: Path | None = None) -> str:
    """The one line a unit's failure reaches the user as, naming the video (and, where the error does, the
    frame); an unexpected exception's traceback goes to OUT/.logs/worker-<pid>-error.txt, named in the line."""
    if isinstance(exc, VreError):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = describe_os_error(exc)
    else:
        where = ""
        if log_dir is not None:
            try:
                log_dir.mkdir(parents=True, exist_ok=True)
                path = log_dir / f"worker-{os.getpid()}-error.txt"
                path.write_text("".join(traceback.format_exception(exc)))
                where = f" (traceback in {path})"
            except OSError:
                pass
        text = f"unexpected {type(exc).__name__} on frames {unit.frames[0]}..{unit.frames[-1] + 1}: {exc}{where}"
    return text if unit.video in text else f"{unit.video}: {text}"


def _interrupt_when_gone(coordinator: int) -> None:
    """SIGINT to this worker as soon as `coordinator` (the process that started it) ends: a coordinator that is
    SIGKILLed (the OOM killer, `kill -9`) cannot stop its workers, and they would otherwise run their unit to its
    end with no one to report to (the forkserver, their parent, lives on while they do). A daemon thread waits on
    the coordinator's pidfd (Linux); elsewhere the closed pipe ends the worker after its unit."""
    try:
        pidfd = os.pidfd_open(coordinator)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the coordinator is gone already
        if not _alive(coordinator):
            raise KeyboardInterrupt from None
        return

    def watch() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="vre-fast-coordinator-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def serve(conn: Connection, spec: WorkerSpec, coordinator: int | None = None) -> None:
    """A local worker process's loop: receive a unit (a dict; None: stop), execute it, send ("done", result)
    or ("error", key, line). SIGINT (from the coordinator, or the terminal's Ctrl-C) interrupts the unit: its
    run folds its journals and the process exits with 130, quietly; so does the end of `coordinator` (its pid:
    a coordinator killed by SIGKILL), and a closed pipe ends it too."""
    os.environ.setdefault("OMP_NUM_THREADS", str(spec.kernel_threads))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    session = None
    try:
        if coordinator is not None:
            _interrupt_when_gone(coordinator)
        session = WorkerSession(spec)
        conn.send(("ready", spec.index))
        while True:
            try:
                message = conn.recv()
            except EOFError:
                break
            if message is None:
                break
            unit = WorkUnit.from_dict(message)
            try:
                result = session.execute(unit)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                conn.send(("error", list(unit.key), describe_failure(unit, exc, Path(unit.out_dir) / ".logs")))
                continue
            conn.send(("done", result.to_dict()))
    except KeyboardInterrupt:  # one SIGINT is enough: the terminal's Ctrl-C and the coordinator's may both come
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = 130
    except Exception as exc:  # the session could not start (a plugin that fails to load)
        with contextlib.suppress(OSError):
            conn.send(("fatal", str(exc) if isinstance(exc, VreError) else f"{type(exc).__name__}: {exc}"))
        code = 1
    finally:
        if session is not None:
            try:
                session.close()
            except KeyboardInterrupt:
                code = 130
    sys.exit(code)  # SystemExit: the process ends with `code`, its finalizers run, no traceback is printed
