"""How a run on N workers is cut and how many threads each worker gets: the policies, apart from the pool's
mechanism (`pool.py`), each overridable from the command line (`--chunk-size`, `--threads`)."""

from __future__ import annotations

import math
import os

__all__ = ["available_cores", "chunk_frames", "chunk_size", "threads_per_worker"]

MIN_CHUNK, MAX_CHUNK = 4, 64
CHUNKS_PER_WORKER = 6  # queue depth: the last chunk is 1/6 of a worker's share, so workers finish close together


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def chunk_size(num_frames: int, workers: int, batch_size: int) -> int:
    """Frames per unit: small enough that about CHUNKS_PER_WORKER units per worker are queued (a static split into
    N equal ranges ends with every worker waiting on the slowest one), large enough that a unit's fixed costs
    (its run record, its journal, opening the metadata: bench/scaling.py measures them) stay small; a multiple
    of the batch size, so no batch of a chunk is short but the video's last."""
    size = math.ceil(num_frames / max(1, workers * CHUNKS_PER_WORKER))
    size = min(MAX_CHUNK, max(MIN_CHUNK, size))
    return max(batch_size, math.ceil(size / batch_size) * batch_size)


def chunk_frames(frames: list[int], size: int) -> list[list[int]]:
    """`frames` (ascending) cut into consecutive chunks of `size`."""
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Kernel (numba, BLAS) threads of each worker: its share of the cores, less the one its decode and writer
    threads need (as a single run leaves one, execution/threads.py); at least one. On 2 cores with 2 workers: 1
    each, not the 2 x 2 that make every stage wait."""
    share = max(1, (cores or available_cores()) // max(1, workers))
    return max(1, share - 1)
