"""Every-frame policy: a short bounded queue; a full queue makes the reader wait (back-pressure).

For sources that can wait (a file, a pipe) when every frame must be processed.
"""

from __future__ import annotations

import queue
from typing import Any

__all__ = ["BlockingQueue"]


class BlockingQueue:
    def __init__(self, maxsize: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._closed = False
        self.dropped = 0
        self.max_depth = 0

    def put(self, item: Any) -> None:
        """Waits for room (never drops: returns None, as LatestFrameSlot.put does when it replaced nothing)."""
        while not self._closed:
            try:
                self._queue.put(item, timeout=0.1)
                self.max_depth = max(self.max_depth, self._queue.qsize())
                return
            except queue.Full:
                continue

    def get(self, timeout: float | None = None) -> Any:
        """The oldest item, or None when closed and empty (or on timeout)."""
        try:
            return self._queue.get(timeout=0.05 if self._closed else timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed and self._queue.empty()
