"""The execution layer's contracts: operators, what they report, and what policies decide on.

An operator is one step a frame batch goes through (decode, host->device, compute, device->host, encode,
write). Its `__call__` is a template method: it times the inner `run` hook and records frames, bytes and
the deepest its input queue got, so every stage reports the same way and no stage times itself. Policies
(policies/) look only at `ResourceReport`s and `Request`s: they decide, the scheduler carries out.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["Operator", "OperatorStats", "Request", "ResourceReport", "nbytes"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class OperatorStats:
    calls: int = 0
    frames: int = 0
    bytes: int = 0  # of what the operator produced (copied, encoded, written)
    busy_seconds: float = 0.0  # summed over the threads that ran it
    queue_max: int = 0  # the most items waiting for it at a call


def nbytes(x: Any) -> int:
    """Bytes of an array, a device array or a tuple of them; 0 for anything else."""
    if isinstance(x, (tuple, list)):
        return sum(map(nbytes, x))
    return int(getattr(x, "nbytes", 0) or 0)


class Operator(ABC, Generic[In, Out]):
    """One step; subclasses implement `run` (and `frames_of` when the input is not a frame batch)."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.stats = OperatorStats()
        self._lock = threading.Lock()  # writers run an operator from several threads

    def __call__(self, item: In, queued: int = 0) -> Out:
        start = time.perf_counter()
        try:
            out = self.run(item)
        finally:
            busy = time.perf_counter() - start
            with self._lock:
                self.stats.calls += 1
                self.stats.busy_seconds += busy
                self.stats.queue_max = max(self.stats.queue_max, queued)
        with self._lock:
            self.stats.frames += self.frames_of(item)
            self.stats.bytes += self.bytes_of(item, out)
        return out

    @abstractmethod
    def run(self, item: In) -> Out:
        """The step itself; raises on failure (the error policy decides what a failure means)."""

    def frames_of(self, item: In) -> int:
        """Frames `item` holds: a batch's first dimension by default."""
        return len(item) if hasattr(item, "__len__") else 1

    def bytes_of(self, item: In, out: Out) -> int:
        return nbytes(out)


@dataclass(frozen=True)
class ResourceReport:
    """What the run holds right now; back-pressure policies veto new work on it."""

    frames_in_flight: int = 0  # decoded frames whose slot is not yet given back
    pinned_bytes_in_use: int = 0  # page-locked bytes of the slots in use
    writes_pending: int = 0  # write jobs submitted and not finished


@dataclass(frozen=True)
class Request:
    """What an action would add: a chunk to decode (frames, bytes), or one write (writes=1)."""

    frames: int = 0
    pinned_bytes: int = 0
    writes: int = 0
