"""How a run on N workers is cut, how many threads each worker gets and how long a unit may take: the policies,
apart from the pools' mechanism (`pool.py`, `ray_pool.py`), each overridable from the command line
(`--chunk-size`, `--threads`, `--unit-timeout`, `--setup-timeout`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

__all__ = ["UnitDeadline", "available_cores", "chunk_frames", "chunk_size", "threads_per_worker"]

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


@dataclass
class UnitDeadline:
    """How long a unit may run before its worker is taken for hung (a stuck decoder, CUDA call or lock) and
    killed, its unit re-queued: the pool asks `seconds` as it hands a unit out and tells `observe` each result.

    `fixed` (`--unit-timeout SECONDS`) is every unit's limit; None derives it from the run itself:
    max(`minimum`, `factor` x the slowest time per frame of the units done so far x the unit's frames), and,
    before any unit is done, max(`minimum`, `unmeasured` x its frames) (generous: a large expert on a CPU).
    0 turns it off.
    A worker's first unit also sets its representations up (loading experts, building engines: minutes), so
    it gets `setup` more seconds (`--setup-timeout`); the clock starts when the worker is ready (imported)."""

    fixed: float | None = None
    setup: float = 600.0
    minimum: float = 60.0
    factor: float = 20.0
    unmeasured: float = 30.0  # seconds a frame, until a unit has been measured
    _per_frame: float = field(default=0.0, init=False)

    def observe(self, seconds: float, setup_seconds: float, computed_frames: int) -> None:
        """A unit done: its seconds less its set-up, over the frames it computed (none: nothing measured)."""
        if computed_frames > 0:
            self._per_frame = max(self._per_frame, max(0.0, seconds - setup_seconds) / computed_frames)

    def seconds(self, frames: int, first_on_worker: bool) -> float | None:
        """The limit of a unit of `frames` frames, from the moment its worker is ready; None: no limit."""
        if self.fixed == 0:
            return None
        if self.fixed is not None:
            limit = self.fixed
        elif self._per_frame:
            limit = max(self.minimum, self.factor * self._per_frame * frames)
        else:
            limit = max(self.minimum, self.unmeasured * frames)
        return limit + (self.setup if first_on_worker else 0.0)
