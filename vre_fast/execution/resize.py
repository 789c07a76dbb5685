"""Resizing batched outputs to the run's output size."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["resize_batch"]


def resize_batch(x: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """(B, h, w[, C]) -> (B, H, W[, C]); "auto" is nearest for integer/bool data, linear for floats.

    Nearest is exact index arithmetic in NumPy (any dtype); linear goes through OpenCV in float32.
    """
    height, width = size
    if x.shape[1:3] == (height, width):
        return x
    if interpolation == "auto":
        interpolation = "linear" if np.issubdtype(x.dtype, np.floating) else "nearest"
    if interpolation == "nearest":
        rows = np.minimum(((np.arange(height) + 0.5) * x.shape[1] / height).astype(np.int64), x.shape[1] - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * x.shape[2] / width).astype(np.int64), x.shape[2] - 1)
        return x[:, rows][:, :, cols]
    out = [cv2.resize(f.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) for f in x]
    return np.stack(out).reshape((len(x), height, width, *x.shape[3:]))
