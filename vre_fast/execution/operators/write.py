"""Write: pictures drawn, binary formats compressed, files written atomically, the frame recorded in the
metadata. `WritePool` runs write jobs in threads behind compute; a job is submitted only once the
back-pressure policies admit it (the writer-queue depth), so a slow disk slows compute down."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..._cfg import BINARY_FORMATS, IMAGE_FORMATS
from ..admission import Admission
from ..contracts import Operator, Request
from ..ring import FrameSlot
from ..streams import HostBuffer

if TYPE_CHECKING:
    from ..binding import NodeBinding

__all__ = ["WriteJob", "WriteOperator", "WritePool"]


@dataclass
class WriteJob:
    node: NodeBinding
    frame: int
    stored: np.ndarray
    decoded: np.ndarray | None  # None when no dependant needed it decoded (a picture decodes `stored` itself)
    seconds: float  # the frame's share of its batch's compute time, for the metadata
    # what the output is a view of (a frame slot, a pinned buffer copied back from a device), released once
    # written
    frames: FrameSlot | HostBuffer | None


class WriteOperator(Operator[WriteJob, None]):
    name = "write"

    def run(self, item: WriteJob) -> None:
        try:
            cfg = item.node.cfg
            images = [fmt for fmt in cfg.output_formats if fmt in IMAGE_FORMATS]
            picture = self._picture(item) if images else None
            binary = tuple(fmt for fmt in cfg.output_formats if fmt in BINARY_FORMATS)
            item.node.files.write(item.frame, item.stored, binary, {fmt: picture for fmt in images}, cfg.compress,
                                  cfg.jpeg_quality)
            assert item.node.metadata is not None
            item.node.metadata.record(item.frame, item.seconds, cfg.output_formats)
        finally:
            if item.frames is not None:
                item.frames.release()

    @staticmethod
    def _picture(item: WriteJob) -> np.ndarray:
        """The frame drawn from its decoded value: the batch's when a dependant needed it decoded anyway, else
        drawn here from the stored frame (`make_image_of_stored`: the same picture, decode being what a read
        from disk applies)."""
        rep = item.node.representation
        if item.decoded is not None:
            return rep.make_image(item.decoded[None])[0]
        return rep.make_image_of_stored(item.stored[None])[0]

    def frames_of(self, item: WriteJob) -> int:
        return 1

    def bytes_of(self, item: WriteJob, out: None) -> int:
        return item.stored.nbytes


class WritePool:
    """Write jobs in `workers` threads; `submit` waits while the admission's policies veto another write."""

    _WRITE = Request(writes=1)

    def __init__(self, write: WriteOperator, workers: int, admission: Admission):
        self._write, self._admission = write, admission
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vre-write")
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # compute's idle time waiting to submit

    def submit(self, job: WriteJob) -> None:
        self.waited_seconds += self._admission.acquire(self._WRITE) or 0.0
        queued = self._admission.report().writes_pending - 1
        self._pool.submit(self._write, job, queued).add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        self._admission.release(self._WRITE)
        if future.exception() is not None:
            with self._lock:
                self._errors.append(future.exception())

    def raise_errors(self) -> None:
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        """Waits for every submitted write: finished work is never dropped, even when stopping."""
        self._pool.shutdown(wait=True)
