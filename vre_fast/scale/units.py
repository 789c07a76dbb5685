"""The work unit: one video x one chunk of its frames x one group, small and plain (JSON-able), so a local
process pool or a cluster scheduler (Ray) hands it to any worker; and the queue that hands units out in an
order that respects the groups' dependencies.

A unit's result is the per-representation counters of the run it made (`RunRecord.representations`), which
the coordinator adds up into one summary.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .groups import Group

__all__ = ["UnitQueue", "UnitResult", "WorkUnit", "make_units"]


@dataclass(frozen=True)
class WorkUnit:
    job: int  # which video of the run (the position in the list or manifest)
    chunk: int  # which chunk of that video's frames
    group: str
    video: str
    out_dir: str
    frames: tuple[int, ...]  # ascending

    @property
    def key(self) -> tuple[int, int, str]:
        return self.job, self.chunk, self.group

    def describe(self) -> str:
        return f"{self.video} frames {self.frames[0]}..{self.frames[-1] + 1} ({self.group})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frames": list(self.frames)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkUnit:
        return cls(**{**d, "frames": tuple(d["frames"])})


@dataclass
class UnitResult:
    key: tuple[int, int, str]
    computed_frames: int  # frames the unit's run decoded and computed (0: all were on disk already)
    representations: dict[str, dict[str, Any]] = field(default_factory=dict)  # RunRecord.representations' rows
    seconds: float = 0.0  # the unit's wall time in the worker
    setup_seconds: float = 0.0  # of which setting representations up (0 when they were resident)
    worker: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitResult:
        return cls(**{**d, "key": tuple(d["key"])})


def make_units(job: int, video: str, out_dir: str, chunks: Iterable[list[int]], groups: tuple[Group, ...]
               ) -> list[WorkUnit]:
    """Every (chunk, group) unit of one video; the same chunks for every group, so a group's unit waits for
    exactly the units of the groups it reads from that hold its frames."""
    return [WorkUnit(job, i, g.name, video, out_dir, tuple(chunk)) for i, chunk in enumerate(chunks) for g in groups]


class UnitQueue:
    """Units waiting, handed out by group in (video, chunk) order once the units they read from are done; a
    unit taken back (its worker died) goes to the front. Used by the pool's coordinator (`pool.LocalPool.run`)
    and the cluster's (`ray_pool.RayPool.run`).

    Each group's ready units are a heap by their place in line, and a unit that waits for others moves there
    when the last of them is done: a take, a done and a count cost O(log n), not a walk over every unit waiting
    (which, with many videos and a group waiting for another, the coordinator paid for each idle worker at
    every message, 25 ms at 100,000 units)."""

    def __init__(self, units: list[WorkUnit], groups: tuple[Group, ...]):
        self._after = {g.name: g.after for g in groups}
        self._dependants = {g.name: [h.name for h in groups if g.name in h.after] for g in groups}
        self._units = {u.key: u for u in units}
        self._ready: dict[str, list[tuple[int, tuple[int, int, str]]]] = {g.name: [] for g in groups}
        self._place = {u.key: i for i, u in enumerate(units)}
        self._blocked: set[tuple[int, int, str]] = set()
        self._taken: dict[tuple[int, int, str], WorkUnit] = {}
        self._done: set[tuple[int, int, str]] = set()
        self._left = {g.name: 0 for g in groups}  # per group: units not done yet, waiting or taken
        self._front = 0  # places before every unit's: the units given back, the latest first
        self.total = len(units)
        for unit in units:
            self._left[unit.group] += 1
            if self._ready_now(unit):
                heapq.heappush(self._ready[unit.group], (self._place[unit.key], unit.key))
            else:
                self._blocked.add(unit.key)

    def take(self, group: str | None = None) -> WorkUnit | None:
        """The next ready unit (of `group`; None: of any group), or None when none is ready now."""
        heaps = [h for h in ([self._ready[group]] if group is not None else self._ready.values()) if h]
        if not heaps:
            return None
        _, key = heapq.heappop(min(heaps, key=lambda h: h[0]))
        unit = self._units[key]
        self._taken[key] = unit
        return unit

    def done(self, unit: WorkUnit) -> None:
        self._taken.pop(unit.key)
        self._done.add(unit.key)
        self._left[unit.group] -= 1
        for group in self._dependants[unit.group]:
            key = (unit.job, unit.chunk, group)
            if key in self._blocked and self._ready_now(self._units[key]):
                self._blocked.discard(key)
                heapq.heappush(self._ready[group], (self._place[key], key))

    def give_back(self, unit: WorkUnit) -> None:
        """A unit whose worker died: first in line again."""
        self._taken.pop(unit.key)
        self._front -= 1
        heapq.heappush(self._ready[unit.group], (self._front, unit.key))

    def pending(self, group: str | None = None) -> int:
        """Units of `group` (None: all) not done yet, waiting or taken."""
        return sum(self._left.values()) if group is None else self._left.get(group, 0)

    @property
    def finished(self) -> bool:
        return len(self._done) == self.total

    def _ready_now(self, unit: WorkUnit) -> bool:
        return all((unit.job, unit.chunk, g) in self._done for g in self._after[unit.group])
