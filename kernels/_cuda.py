"""Shared helpers for the numba.cuda kernels: launch geometry and device-array coercion."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda

__all__ = ["as_device", "cuda", "grid_2d", "to_host"]

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
