"""Per-frame latency accounting: where each frame's time went, and percentiles over the run."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["FrameTiming", "LatencyStats"]

STAGES = ("wait", "compute", "send", "total")


@dataclass(frozen=True)
class FrameTiming:
    """Seconds: received -> compute starts (wait), compute, send, received -> sent (total)."""

    frame_id: int
    received_at: float
    wait: float
    compute: float
    send: float

    @property
    def total(self) -> float:
        return self.wait + self.compute + self.send


class LatencyStats:
    """Keeps the last `window` frames' timings; counts everything."""

    def __init__(self, window: int = 100_000):
        self._timings: deque[FrameTiming] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.processed = 0
        self.dropped = 0
        self.rejected = 0
        self.refused = 0

    def add(self, timing: FrameTiming) -> None:
        with self._lock:
            self._timings.append(timing)
            self.processed += 1

    def percentiles(self, q: tuple[float, ...] = (50, 99)) -> dict[str, dict[str, float]]:
        """{stage: {"p50": ms, "p99": ms}} over the kept frames."""
        with self._lock:
            timings = list(self._timings)
        if not timings:
            return {}
        return {stage: {f"p{p:g}": 1000 * float(v) for p, v in
                        zip(q, np.percentile([getattr(t, stage) for t in timings], q))} for stage in STAGES}

    def summary(self) -> dict[str, object]:
        return {"processed": self.processed, "dropped": self.dropped, "rejected": self.rejected,
                "refused": self.refused, "latency_ms": self.percentiles()}

    def format(self) -> str:
        lines = [f"frames: {self.processed} processed, {self.dropped} dropped (newer frame arrived first), "
                 f"{self.rejected} rejected (malformed or incomplete); {self.refused} clients refused"]
        for stage, values in self.percentiles().items():
            lines.append(f"  {stage:<8} p50 {values['p50']:8.3f} ms   p99 {values['p99']:8.3f} ms")
        return "\n".join(lines)
