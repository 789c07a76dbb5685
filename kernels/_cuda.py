"""Shared helpers for the numba.cuda kernels: lazy compilation, launch geometry, device-array coercion.

numba.cuda costs a noticeable part of a second to import and is useless to a CPU run, so it is imported
on first use: `cuda` stands for the module until then, and `cuda_kernel` compiles a kernel at its first
launch. Kernels launch on the stream the runtime names for the thread (`launch_stream`), so a kernel's code
never mentions streams; outside such a block they go on the default stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["as_device", "cuda", "cuda_kernel", "grid_2d", "launch_stream", "to_host"]


class _NumbaCuda:
    """`numba.cuda`, imported when an attribute is first asked for."""

    def __getattr__(self, name: str) -> Any:
        from numba import cuda as module

        return getattr(module, name)


cuda: Any = _NumbaCuda()
_launching = threading.local()  # .stream: where this thread's launches go (None: the default stream)


@contextmanager
def launch_stream(stream: Any) -> Iterator[None]:
    """Kernels this thread launches as `kernel[blocks, threads](...)` inside the block go on `stream`."""
    previous = getattr(_launching, "stream", None)
    _launching.stream = stream
    try:
        yield
    finally:
        _launching.stream = previous


class _LazyKernel:
    """A `numba.cuda.jit` kernel compiled on its first launch (`kernel[blocks, threads](...)`)."""

    def __init__(self, fn: Callable[..., None], options: dict[str, Any]):
        self._fn, self._options = fn, options
        self._compiled: Any = None
        self._lock = threading.Lock()

    @property
    def py_func(self) -> Callable[..., None]:
        """The Python function, ready for numba's CUDA compiler (e.g. `cuda.compile_ptx`)."""
        from numba import cuda as module

        self._fn.__globals__["cuda"] = module  # the body's `cuda.grid` must resolve to the module itself
        return self._fn

    def __getitem__(self, launch: Any) -> Any:
        with self._lock:
            if self._compiled is None:
                from numba import cuda as module

                self._compiled = module.jit(**self._options)(self.py_func)
        stream = getattr(_launching, "stream", None)
        if stream is not None and isinstance(launch, tuple) and len(launch) == 2:
            launch = (*launch, stream)
        return self._compiled[launch]


def cuda_kernel(**options: Any) -> Callable[[Callable[..., None]], _LazyKernel]:
    """`@cuda.jit(**options)`, deferred until the kernel is first launched."""
    return lambda fn: _LazyKernel(fn, options)

BLOCK_2D = (16, 16)


def grid_2d(height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(blocks, threads) covering an (height, width) image; kernels index x (columns) fastest."""
    bx, by = BLOCK_2D
    return ((width + bx - 1) // bx, (height + by - 1) // by), BLOCK_2D


def as_device(x: Any) -> Any:
    """A numba device array: device objects (numba, CuPy, torch) without a copy, host arrays copied over."""
    if hasattr(x, "copy_to_host"):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x)
    return cuda.to_device(np.ascontiguousarray(x))


def to_host(x: Any) -> Any:
    """NumPy from a device array; host arrays pass through."""
    return x.copy_to_host() if hasattr(x, "copy_to_host") else x
