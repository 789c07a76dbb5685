"""Decode: the frames of a chunk (plus t+1 where needed) into a ring slot. `DecodeStage` runs it in a thread,
ahead of compute, behind a bounded queue; each chunk is admitted by the back-pressure policies first."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from ...sources import SeekableSource
from ..admission import Admission
from ..contracts import Operator, Request
from ..ring import FrameRing, FrameSlot

__all__ = ["DecodeOperator", "DecodeStage"]


class DecodeOperator(Operator[tuple[set[int], FrameSlot], FrameSlot]):
    name = "decode"

    def __init__(self, source: SeekableSource):
        super().__init__()
        self.source = source

    def run(self, item: tuple[set[int], FrameSlot]) -> FrameSlot:
        wanted, slot = item
        slot.fill(self.source.read(wanted), self.source.path)
        return slot

    def frames_of(self, item: tuple[set[int], FrameSlot]) -> int:
        return len(item[0])

    def bytes_of(self, item: tuple[set[int], FrameSlot], out: FrameSlot) -> int:
        return len(item[0]) * out.frame_bytes


class DecodeStage:
    """Yields (chunk, slot) in order; the consumer releases each slot when done with it (the ring then gives
    the admitted frames back)."""

    _END = object()

    def __init__(self, decode: DecodeOperator, chunks: list[tuple[list[int], set[int]]], ring: FrameRing,
                 admission: Admission, max_queued: int):
        self._decode, self._chunks, self._ring, self._admission = decode, chunks, ring, admission
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vre-decode", daemon=True)

    def __iter__(self) -> Iterator[tuple[list[int], FrameSlot]]:
        self._thread.start()
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        try:
            for chunk, wanted in self._chunks:
                request = Request(frames=len(wanted), pinned_bytes=self._ring.slot_pinned_bytes())
                if self._admission.acquire(request, self._stop) is None:
                    return
                slot = self._ring.acquire(self._stop, on_free=lambda r=request: self._admission.release(r))
                if slot is None:
                    self._admission.release(request)
                    return
                try:
                    self._decode((wanted, slot), queued=self._queue.qsize())
                except BaseException:
                    slot.release()
                    raise
                if not self._put((chunk, slot)):
                    slot.release()
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
        self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        while not self._queue.empty():  # chunks decoded but never computed give their slots back
            item = self._queue.get()
            if isinstance(item, tuple):
                item[1].release()
