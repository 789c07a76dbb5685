"""How frames wait between the reader thread and the compute loop; one policy per file.

Every policy offers `put(item) -> the item it dropped, or None` (reader side), `get(timeout) -> item | None`
(compute side), `close()` (no more items), and counts `dropped` items and the deepest it got (`max_depth`).
"""

from __future__ import annotations

from .blocking import BlockingQueue
from .latest import LatestFrameSlot

__all__ = ["POLICIES", "BlockingQueue", "LatestFrameSlot", "make_policy"]

POLICIES = {"latest": LatestFrameSlot, "all": BlockingQueue}


def make_policy(name: str) -> LatestFrameSlot | BlockingQueue:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown frame policy '{name}'; known: {sorted(POLICIES)}") from None
