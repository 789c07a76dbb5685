"""Frame buffers allocated once and reused: decode fills a slot, the slot comes back when the last user of
its frames lets go (compute, then any write still holding a view of them).

Batches handed to representations are views into a slot where the frames lie consecutively, so a chunk's
frames are copied once, from the decoder into the slot. Slots are page-locked (pinned) when a CUDA device
reads them: copies to the device then run asynchronously at full bandwidth, without pinning per tensor.
The slot count bounds the frames in flight, whatever the video's length. A slot is given back only once the
device copies that read it have completed (`after`; streams.py says why that ordering matters).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VideoError
from .shared import SharedUse

if TYPE_CHECKING:
    from .streams import Event

__all__ = ["FrameRing", "FrameSlot"]


class FrameSlot(SharedUse):
    def __init__(self, rows: int, frame_shape: tuple[int, int, int], pinned: bool,
                 give_back: Callable[[FrameSlot], None]):
        super().__init__()
        self.array: np.ndarray | None = None  # (rows, H, W, 3) uint8, allocated by the first fill
        self._capacity, self._frame_shape, self._pinned, self._give_back = rows, frame_shape, pinned, give_back
        self._rows: dict[int, int] = {}
        self._on_free: Callable[[], None] | None = None  # set by each acquire: the admission to give back
        self._reads: list[Event] = []  # completion events of device copies reading this slot

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self._frame_shape))

    @property
    def pinned_bytes(self) -> int:
        """Page-locked bytes this slot holds once allocated: all its rows, whatever a chunk fills."""
        return self._capacity * self.frame_bytes if self._pinned else 0

    def fill(self, frames: Iterable[tuple[int, np.ndarray]], source: object) -> None:
        """Copies (index, frame) pairs into consecutive rows; `source` names the video in errors."""
        self._rows.clear()
        for row, (index, frame) in enumerate(frames):
            if self.array is None:
                self.array = _allocate((self._capacity, *self._frame_shape), self._pinned)
            if frame.shape != self.array.shape[1:]:
                h, w = self.array.shape[1:3]
                raise VideoError(f"{source}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the video's "
                                 f"frames are {w}x{h} (a resolution change inside the stream is not supported)")
            self.array[row] = frame
            self._rows[index] = row

    def take(self, indices: list[int]) -> np.ndarray:
        """The frames of `indices`: a view when their rows are consecutive, else a copy."""
        assert self.array is not None
        rows = [self._rows[i] for i in indices]
        if rows == list(range(rows[0], rows[0] + len(rows))):
            return self.array[rows[0]:rows[0] + len(rows)]
        return self.array[rows]

    def holds(self, array: np.ndarray) -> bool:
        """Whether `array` may be a view of this slot's memory (then its user must `retain` the slot)."""
        return self.array is not None and np.may_share_memory(array, self.array)

    def after(self, copied: Event) -> None:
        """A host->device copy reading this slot was queued; `copied` completes when it has read it all. The
        slot is not refilled before: an asynchronous copy from pinned memory reads it after its call returns."""
        with self._lock:
            self._reads.append(copied)

    def wait_for_reads(self) -> None:
        """Blocks until the copies registered with `after` have completed. The executor calls it on the
        compute thread, which holds the device's context, before letting go; `release` calls it too, so
        the slot never goes back early whoever lets go last."""
        with self._lock:
            reads, self._reads = self._reads, []
        for copied in reads:
            copied.synchronize()

    def _last_released(self) -> None:
        self.wait_for_reads()
        on_free, self._on_free = self._on_free, None
        self._give_back(self)
        if on_free is not None:
            on_free()


class FrameRing:
    """`slots` buffers of `rows` frames of `frame_shape` (H, W, 3) each; `pinned` page-locks them through torch
    (runs on CUDA)."""

    def __init__(self, slots: int, rows: int, frame_shape: tuple[int, int, int], pinned: bool = False):
        self._free: queue.Queue[FrameSlot] = queue.Queue()
        self.slots = [FrameSlot(rows, frame_shape, pinned, self._free.put) for _ in range(slots)]
        for slot in self.slots:
            self._free.put(slot)

    def slot_pinned_bytes(self) -> int:
        """Pinned bytes a chunk holds while in flight (a whole slot, whatever it fills); 0 when not pinned."""
        return self.slots[0].pinned_bytes if self.slots else 0

    def acquire(self, stop: threading.Event, on_free: Callable[[], None] | None = None) -> FrameSlot | None:
        """A free slot with one user (the caller), waiting while all are in use; None once `stop` is set.
        `on_free` is called once the slot's last user lets go."""
        while not stop.is_set():
            try:
                slot = self._free.get(timeout=0.1)
            except queue.Empty:
                continue
            slot._on_free = on_free
            slot.retain()
            return slot
        return None


def _allocate(shape: tuple[int, ...], pinned: bool) -> np.ndarray:
    if not pinned:
        return np.empty(shape, np.uint8)
    import torch

    return torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()  # the array keeps the tensor alive
