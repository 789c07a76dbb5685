"""Speculative prefetch: the next batches are read in background threads while the current one is used.

The threads spend most of their time where Python lets go of the GIL (file reads, zlib, numba kernels,
torch's copies), so they overlap with a training step that runs in torch. Results come back in submission
order, so a prefetched sequence of batches equals the one read without prefetch.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import numpy as np
import torch

__all__ = ["Prefetcher", "RecycledArrays", "default_threads", "pin"]

T = TypeVar("T")


def pin(batch: Any) -> Any:
    """`batch` with every tensor in page-locked memory (for asynchronous copies to the GPU)."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: pin(v) for k, v in batch.items()}
    return batch


def default_threads(depth: int) -> int:
    """Reading threads for a read-ahead of `depth`: no more than the cores left beside the consumer. Reading a
    batch is mostly memory traffic (copies, float16 widening, page faults of fresh arrays): on this project's
    2-core machine, two reading threads beside the training loop were slower than one (measured in
    bench/reader_throughput.py: 7.4 against 11.4 batches/s)."""
    return max(1, min(depth, len(os.sched_getaffinity(0)) - 1))


class Prefetcher(Generic[T]):
    """Iterates over the results of `jobs` (callables, each reading one batch), keeping `depth` of them read
    ahead by `threads` threads (default: `default_threads`). Memory: at most `depth` batches read or being
    read, plus the one the consumer holds. `depth=0` runs each job when its batch is asked for. With
    `pin_memory`, each batch is pinned in its thread."""

    def __init__(self, jobs: Iterable[Callable[[], T]], depth: int = 3, threads: int | None = None,
                 pin_memory: bool = False):
        if depth < 0 or (threads is not None and threads < 1):
            raise ValueError(f"prefetch depth must be >= 0 and threads >= 1, got {depth} and {threads}")
        self.jobs, self.depth, self.pin_memory = jobs, depth, pin_memory
        self.threads = threads or default_threads(depth)
        self.most_in_flight = 0  # the most batches read ahead at once (a check of the memory bound)

    def _run(self, job: Callable[[], T]) -> T:
        result = job()
        return pin(result) if self.pin_memory else result

    def __iter__(self) -> Iterator[T]:
        jobs = iter(self.jobs)
        if self.depth == 0:
            for job in jobs:
                yield self._run(job)
            return
        pending: deque[Future[T]] = deque()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="vre-prefetch") as pool:
            try:
                for job in jobs:
                    pending.append(pool.submit(self._run, job))
                    if len(pending) > self.depth:  # the next batch is due, `depth` more are on their way
                        ready = pending.popleft().result()
                        self.most_in_flight = max(self.most_in_flight, len(pending))
                        yield ready
                while pending:
                    yield pending.popleft().result()
            finally:  # the consumer stopped early (or a job failed): read nothing more
                for future in pending:
                    future.cancel()


class RecycledArrays:
    """Batch arrays that are handed out again once nothing refers to them any more.

    A fresh 100 MB array costs its page faults each time, and more when the kernel compacts memory for
    transparent huge pages while earlier batches are still held (on this project's 2-core machine a 138 MB
    allocation took 19 ms alone and 79 ms with three batches alive, against 25 ms to fill it). An array
    counts as free when the list below holds its only reference: a batch tensor, any view of it, its NumPy
    view or its storage keeps it referenced (torch.from_numpy holds the array for the storage's lifetime),
    so memory still in use is never handed out. Lives as long as one `VREDataset.batches` iteration."""

    _FREE_REFERENCES = 3  # the list, the loop variable, getrefcount's argument

    def __init__(self) -> None:
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()  # the prefetch threads ask at once

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array of `shape` and `dtype`: a free one again, else a new one."""
        with self._lock:
            for array in self._arrays:
                if array.shape == shape and array.dtype == dtype and sys.getrefcount(array) == self._FREE_REFERENCES:
                    return array
            array = np.empty(shape, dtype)
            self._arrays.append(array)
            return array
