"""The run's resource counters, and the gate that holds an action back while a back-pressure policy vetoes
it (mechanism only: the policies in policies/backpressure.py decide)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from .contracts import Request, ResourceReport
from .policies.backpressure import BackpressurePolicy, first_veto

__all__ = ["Admission"]


class Admission:
    def __init__(self, policies: Sequence[BackpressurePolicy]):
        self.policies = tuple(policies)
        self._held = ResourceReport()
        self._changed = threading.Condition()
        self.vetoes = 0  # how many times an action had to wait

    def report(self) -> ResourceReport:
        with self._changed:
            return self._held

    def acquire(self, request: Request, stop: threading.Event | None = None) -> float | None:
        """Waits until no policy vetoes `request`, then holds it; the seconds waited, or None if `stop` was
        set first."""
        start = time.perf_counter()
        with self._changed:
            vetoed = False
            while first_veto(self.policies, self._held, request) is not None:
                vetoed = True
                if stop is not None and stop.is_set():
                    return None
                self._changed.wait(timeout=0.1)
            self.vetoes += vetoed
            self._held = _add(self._held, request, 1)
        return time.perf_counter() - start

    def release(self, request: Request) -> None:
        with self._changed:
            self._held = _add(self._held, request, -1)
            self._changed.notify_all()


def _add(held: ResourceReport, request: Request, sign: int) -> ResourceReport:
    return ResourceReport(frames_in_flight=held.frames_in_flight + sign * request.frames,
                          pinned_bytes_in_use=held.pinned_bytes_in_use + sign * request.pinned_bytes,
                          writes_pending=held.writes_pending + sign * request.writes)
