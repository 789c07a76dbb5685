"""Table lookups on class maps: `lut[class_map]` (semantic_mapper, binary_mask, class colour palettes), and
class ids from class probabilities (`argmax` over the last axis), for the dependants of a segmenter that
stores probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ._cuda import as_device, cuda, cuda_kernel
from ._dispatch import backend_of, get_kernel, register_kernel

__all__ = ["apply_lut", "argmax_cuda", "argmax_numba", "argmax_numpy", "class_argmax", "lut_cuda", "lut_numba",
           "lut_numpy"]


def apply_lut(classes: Any, lut: np.ndarray, backend: str | None = None) -> Any:
    """(...) integer class map -> (..., *lut.shape[1:]) values; every class must be < len(lut)."""
    return get_kernel("lut", backend or backend_of(classes))(classes, lut)


@register_kernel("lut", "numpy")
def lut_numpy(classes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    if classes.size and (classes.min() < 0 or classes.max() >= len(lut)):
        raise IndexError(f"class ids span {classes.min()}..{classes.max()}; the table has {len(lut)} entries")
    return lut[classes]


@register_kernel("lut", "numba")
def lut_numba(classes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(classes).reshape(-1)
    table = np.ascontiguousarray(lut).reshape(len(lut), -1)
    out = np.empty((flat.size, table.shape[1]), lut.dtype)
    bad = _lut_scalar(flat, table[:, 0], out[:, 0]) if table.shape[1] == 1 else _lut_rows(flat, table, out)
    if bad >= 0:
        first = int(np.flatnonzero((flat < 0) | (flat >= len(lut)))[0])
        raise IndexError(f"class id {flat[first]} (at flat index {first}) is outside the table of {len(lut)} "
                         f"entries")
    return out.reshape(*classes.shape, *lut.shape[1:])


CHUNK = 16384


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _lut_rows(flat, table, out):  # noqa: ANN001, ANN202
    """Fills `out`; returns the flat index of an out-of-range id, or -1."""
    n, width = len(table), table.shape[1]
    chunks = (flat.size + CHUNK - 1) // CHUNK
    bad = np.full(chunks, -1)
    for c in prange(chunks):
        for i in range(c * CHUNK, min(flat.size, c * CHUNK + CHUNK)):
            k = flat[i]
            if k < 0 or k >= n:
                bad[c] = i
                break
            for j in range(width):
                out[i, j] = table[k, j]
    for c in range(chunks):
        if bad[c] >= 0:
            return bad[c]
    return -1


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _lut_scalar(flat, table, out):  # noqa: ANN001, ANN202
    """`_lut_rows` for one value per class, branch-free so the compiler can vectorise it: ids are clamped
    while looking up, and the largest / smallest id seen decides afterwards whether any was out of range."""
    n = len(table)
    chunks = (flat.size + CHUNK - 1) // CHUNK
    bad = np.full(chunks, -1)
    for c in prange(chunks):
        hi, lo = np.int64(0), np.int64(0)
        for i in range(c * CHUNK, min(flat.size, c * CHUNK + CHUNK)):
            k = np.int64(flat[i])
            hi, lo = max(hi, k), min(lo, k)
            out[i] = table[min(max(k, 0), n - 1)]
        if hi >= n or lo < 0:
            bad[c] = c * CHUNK
    for c in range(chunks):
        if bad[c] >= 0:
            return bad[c]
    return -1


@cuda_kernel(cache=True)
def _lut_cuda_kernel(flat, table, out):  # noqa: ANN001
    i = cuda.grid(1)
    if i < flat.size:
        for j in range(table.shape[1]):
            out[i, j] = table[flat[i], j]


@register_kernel("lut", "cuda")
def lut_cuda(classes: Any, lut: np.ndarray) -> Any:
    """Device class map -> device values; ids are not range-checked on the device (no host round trip)."""
    d_classes = as_device(classes)
    flat = d_classes.reshape(d_classes.size)
    table = cuda.to_device(np.ascontiguousarray(lut).reshape(len(lut), -1))
    out = cuda.device_array((flat.size, table.shape[1]), lut.dtype)
    _lut_cuda_kernel[(flat.size + 255) // 256, 256](flat, table, out)
    return out.reshape(*d_classes.shape, *lut.shape[1:])


def class_argmax(probabilities: Any, backend: str | None = None) -> Any:
    """(..., C) class probabilities -> (...) ids of the largest (the lowest id on ties), uint8 for up to 256
    classes, else uint16; on the backend where the array lives unless told."""
    return get_kernel("argmax", backend or backend_of(probabilities))(probabilities)


def _ids_dtype(classes: int) -> np.dtype:
    return np.dtype(np.uint8 if classes <= 256 else np.uint16)


@register_kernel("argmax", "numpy")
def argmax_numpy(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.argmax(-1).astype(_ids_dtype(probabilities.shape[-1]))


@register_kernel("argmax", "numba")
def argmax_numba(probabilities: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(probabilities).reshape(-1, probabilities.shape[-1])
    out = np.empty(len(flat), _ids_dtype(flat.shape[1]))
    _argmax_rows(flat, out)
    return out.reshape(probabilities.shape[:-1])


@njit(parallel=True, nogil=True, cache=True)
def _argmax_rows(flat, out):  # noqa: ANN001, ANN202
    for i in prange(len(flat)):
        best, k = flat[i, 0], 0
        for c in range(1, flat.shape[1]):
            if flat[i, c] > best:
                best, k = flat[i, c], c
        out[i] = k


@cuda_kernel(cache=True)
def _argmax_cuda_kernel(flat, out):  # noqa: ANN001
    i = cuda.grid(1)
    if i < flat.shape[0]:
        best, k = flat[i, 0], 0
        for c in range(1, flat.shape[1]):
            if flat[i, c] > best:
                best, k = flat[i, c], c
        out[i] = k


@register_kernel("argmax", "cuda")
def argmax_cuda(probabilities: Any) -> Any:
    """Device probabilities -> device class ids, without leaving the GPU."""
    d_probs = as_device(probabilities)
    *pixels, classes = tuple(d_probs.shape)
    flat = d_probs.reshape(d_probs.size // classes, classes)
    out = cuda.device_array(flat.shape[0], _ids_dtype(classes))
    _argmax_cuda_kernel[(flat.shape[0] + 255) // 256, 256](flat, out)
    return out.reshape(*pixels)
