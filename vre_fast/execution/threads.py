"""How many threads a compute kernel may use while the other stages run beside it.

numba's parallel kernels default to one thread per core, and its OpenMP threads spin between kernels;
in the batch pipeline decode and the writers need cores of their own, so on a 2-core machine a
2-thread kernel makes every stage wait on the others (measured: an RGB + HSV run at 960x540 took 5.8 s
with 2 kernel threads and spinning workers, 3.3 s with 1). The runtime leaves one core to the other
stages unless told otherwise (kernels/__init__.py also makes idle OpenMP workers sleep).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["default_kernel_threads", "kernel_threads"]


def default_kernel_threads() -> int:
    """All cores but one (at least one)."""
    return max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) - 1)


@contextmanager
def kernel_threads(count: int) -> Iterator[None]:
    """Caps numba's parallel kernels launched from this thread at `count` threads, for the block."""
    import numba  # the kernels' runtime; imported by every procedural representation anyway

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)

