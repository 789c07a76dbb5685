"""Newest-frame policy: one slot; a frame that arrives while the model is busy replaces the waiting one.

A live source never builds a backlog behind a slow model, so latency stays at one frame's compute
and memory at one frame; the replaced frames are counted as dropped.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LatestFrameSlot"]


class LatestFrameSlot:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0
        self.max_depth = 0

    def put(self, item: Any) -> Any:
        """The item it replaced (dropped), or None."""
        with self._cond:
            replaced, self._item = self._item, item
            if replaced is not None:
                self.dropped += 1
            self.max_depth = 1
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> Any:
        """The newest item, or None when closed and empty (or on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Closed and nothing left to get."""
        return self._closed and self._item is None
