"""Safe-landing mask: normal within an angle of a reference axis, and (optionally) a safe class."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ._cuda import as_device, cuda, cuda_kernel, grid_2d
from ._dispatch import backend_of, get_kernel, register_kernel

__all__ = ["safe_landing", "safe_landing_cuda", "safe_landing_numba", "safe_landing_numpy"]


def safe_landing(normals: Any, axis: tuple[float, float, float], max_angle_deg: float, classes: Any = None,
                 safe_table: np.ndarray | None = None, backend: str | None = None) -> Any:
    """(..., H, W, 3) normals [+ (..., H, W) class map and a per-class bool table] -> (..., H, W) uint8 {0, 1}.

    Zero normals (undefined) are never safe; classes outside the table are not safe.
    """
    unit = np.asarray(axis, np.float64)
    unit = unit / np.linalg.norm(unit)
    cos_min = math.cos(math.radians(max_angle_deg))
    table = np.zeros(1, np.uint8) if safe_table is None else np.asarray(safe_table, np.uint8)
    kernel = get_kernel("safe_landing", backend or backend_of(normals))
    return kernel(normals, unit, cos_min, classes, table)


@register_kernel("safe_landing", "numpy")
def safe_landing_numpy(normals: np.ndarray, unit_axis: np.ndarray, cos_min: float, classes: np.ndarray | None,
                       table: np.ndarray) -> np.ndarray:
    n = normals.astype(np.float64)
    length = np.linalg.norm(n, axis=-1)
    safe = (length > 0) & (n @ unit_axis >= cos_min * length)
    if classes is not None:
        safe &= np.concatenate([table, [0]])[np.minimum(classes, len(table))].astype(bool)
    return safe.astype(np.uint8)


@njit(inline="always")
def _safe_pixel(nx, ny, nz, ax, ay, az, cos_min, class_ok):  # noqa: ANN001, ANN202
    """Scalars only, so CPU and CUDA kernels share it."""
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    ok = class_ok and length > 0 and nx * ax + ny * ay + nz * az >= cos_min * length
    return np.uint8(1) if ok else np.uint8(0)


@register_kernel("safe_landing", "numba")
def safe_landing_numba(normals: np.ndarray, unit_axis: np.ndarray, cos_min: float, classes: np.ndarray | None,
                       table: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(normals, np.float32).reshape(-1, 3)
    cls = np.zeros(1, np.int64) if classes is None else np.ascontiguousarray(classes).reshape(-1)
    out = np.empty(len(flat), np.uint8)
    _safe_numba_loop(flat, float(unit_axis[0]), float(unit_axis[1]), float(unit_axis[2]), cos_min, cls,
                     classes is not None, table, out)
    return out.reshape(normals.shape[:-1])


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _safe_numba_loop(flat, ax, ay, az, cos_min, cls, has_classes, table, out):  # noqa: ANN001
    for i in prange(len(flat)):
        class_ok = True
        if has_classes:
            c = np.int64(cls[i])
            class_ok = c < len(table) and table[c] != 0
        out[i] = _safe_pixel(np.float64(flat[i, 0]), np.float64(flat[i, 1]), np.float64(flat[i, 2]), ax, ay, az,
                             cos_min, class_ok)


@cuda_kernel(cache=True)
def _safe_cuda_kernel(normals, ax, ay, az, cos_min, cls, has_classes, table, out):  # noqa: ANN001
    x, y = cuda.grid(2)
    if y < normals.shape[0] and x < normals.shape[1]:
        class_ok = True
        if has_classes:
            c = np.int64(cls[y, x])
            class_ok = c < len(table) and table[c] != 0
        out[y, x] = _safe_pixel(np.float64(normals[y, x, 0]), np.float64(normals[y, x, 1]),
                                np.float64(normals[y, x, 2]), ax, ay, az, cos_min, class_ok)


@register_kernel("safe_landing", "cuda")
def safe_landing_cuda(normals: Any, unit_axis: np.ndarray, cos_min: float, classes: Any, table: np.ndarray) -> Any:
    d_normals = as_device(normals)
    frames = d_normals.reshape(-1, *d_normals.shape[-3:])
    _, h, w, _ = frames.shape
    d_classes = as_device(classes).reshape(-1, h, w) if classes is not None else cuda.to_device(
        np.zeros((frames.shape[0], 1, 1), np.int64))
    d_table = cuda.to_device(table)
    out = cuda.device_array(frames.shape[:3], np.uint8)
    blocks, threads = grid_2d(h, w)
    for i in range(frames.shape[0]):
        _safe_cuda_kernel[blocks, threads](frames[i], float(unit_axis[0]), float(unit_axis[1]), float(unit_axis[2]),
                                           cos_min, d_classes[i], classes is not None, d_table, out[i])
    return out.reshape(d_normals.shape[:-1])
