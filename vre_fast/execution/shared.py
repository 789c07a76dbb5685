"""Reference counting for reused buffers (a frame ring's slots, a pool's pinned output buffers): each holder
`retain`s, each lets go with `release`, and the last release hands the buffer back."""

from __future__ import annotations

import threading

__all__ = ["SharedUse"]


class SharedUse:
    """`users` holders to begin with; `_last_released` is what a subclass does once none is left."""

    def __init__(self, users: int = 0):
        self._users = users
        self._lock = threading.Lock()

    def retain(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            free = self._users == 0
        if free:
            self._last_released()

    def _last_released(self) -> None:
        raise NotImplementedError
