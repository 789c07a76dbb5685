"""RGB (uint8) -> HSV with every channel in [0, 1] (hue as a fraction of the turn), as VRE defines it.

Every kernel takes the output dtype: float32, or float16 (the stored form), which the numba kernel
writes directly, rounding each float32 result as `astype(np.float16)` would (bit for bit): converting
afterwards in NumPy costs more than the kernel, and a float32 intermediate doubles the memory traffic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ._cuda import as_device, cuda, cuda_kernel, grid_2d
from ._dispatch import backend_of, get_kernel, register_kernel

__all__ = ["hsv_cuda", "hsv_numba", "hsv_numpy", "rgb_to_hsv"]


def rgb_to_hsv(rgb: Any, backend: str | None = None, dtype: Any = np.float32) -> Any:
    """(..., 3) uint8 -> (..., 3) `dtype` (float32 or float16), on the backend where `rgb` lives unless told."""
    return get_kernel("hsv", backend or backend_of(rgb))(rgb, dtype)


@register_kernel("hsv", "numpy")
def hsv_numpy(rgb: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """Reference: the textbook hexcone formula in float64, returned as float32 (then cast to `dtype`)."""
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    delta = v - x.min(axis=-1)
    safe = np.where(delta > 0, delta, 1.0)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1.0), 0.0)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1).astype(np.float32).astype(dtype, copy=False)


@njit(inline="always")
def _hsv_pixel(r: int, g: int, b: int) -> tuple[float, float, float]:
    """float32 arithmetic; integer comparisons pick the branch exactly as the reference's do."""
    hi = r if r > g else g  # no min/max builtins: the CUDA target types them differently
    hi = hi if hi > b else b
    lo = r if r < g else g
    lo = lo if lo < b else b
    delta = hi - lo
    v = np.float32(hi) * np.float32(1 / 255)
    if delta == 0:
        return np.float32(0), np.float32(0), v
    inv = np.float32(1) / np.float32(delta)
    if hi == r:
        h = np.float32(g - b) * inv
    elif hi == g:
        h = np.float32(2) + np.float32(b - r) * inv
    else:
        h = np.float32(4) + np.float32(r - g) * inv
    h *= np.float32(1 / 6)
    if h < 0:
        h += np.float32(1)
    return h, np.float32(delta) / np.float32(hi), v


@register_kernel("hsv", "numba")
def hsv_numba(rgb: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """Parallel over rows; agrees with `hsv_numpy` to 1e-6 (float32 arithmetic); float16 output equals
    the float32 output cast with `astype`, bit for bit."""
    frames = np.ascontiguousarray(rgb).reshape(-1, *rgb.shape[-2:])
    if np.dtype(dtype) == np.float16:
        bits = np.empty(frames.shape, np.uint16)
        _hsv_numba_rows_lookup(frames, bits, *_half_tables())
        return bits.view(np.float16).reshape(rgb.shape)
    out = np.empty(frames.shape, np.float32)
    _hsv_numba_rows(frames, out)
    return out.reshape(rgb.shape).astype(dtype, copy=False)


@njit(parallel=True, nogil=True, fastmath=True, cache=True, error_model="numpy")
def _hsv_numba_rows(rows: np.ndarray, out: np.ndarray) -> None:
    for y in prange(rows.shape[0]):
        for x in range(rows.shape[1]):
            h, s, v = _hsv_pixel(np.int32(rows[y, x, 0]), np.int32(rows[y, x, 1]), np.int32(rows[y, x, 2]))
            out[y, x, 0], out[y, x, 1], out[y, x, 2] = h, s, v


_HALF_TABLES: list[np.ndarray] = []


def _half_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float16 bit patterns of every value the float32 kernel can produce, indexed by what it depends on:
    hue by (branch, signed difference, delta) (3 x 511 x 256), saturation by (delta, max) (256 x 256), value
    by max (256). Each is the float32 kernel's own result on an RGB triple with those properties, cast as
    `astype(np.float16)` casts, so a lookup gives that bit pattern exactly (tested on all 2^24 colours).

    Why: rounding each float32 result to float16 in software cost more than the whole float32 kernel; this
    way the float16 kernel is integer compares and three lookups per pixel (1.7 MB of tables, in cache)."""
    if not _HALF_TABLES:
        delta = np.arange(256)
        d = np.arange(-255, 256)
        dd, de = np.meshgrid(d, delta, indexing="ij")  # (511, 256): every (difference, delta) pair
        lo, hi = 255 - de, np.full_like(de, 255)
        plus, minus = np.where(dd >= 0, dd, 0), np.where(dd < 0, -dd, 0)
        # a triple of each branch with that difference and delta (unreachable pairs give unused entries)
        red_max = np.stack([hi, lo + plus, lo + minus], -1)  # hi == r: d = g - b
        green_max = np.stack([lo + minus, hi, lo + plus], -1)  # hi == g: d = b - r
        blue_max = np.stack([lo + plus, lo + minus, hi], -1)  # hi == b: d = r - g
        triples = np.clip(np.stack([red_max, green_max, blue_max]), 0, 255).astype(np.uint8)
        hue = _float32_hsv(triples)[..., 0]
        top, low = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")  # (max, delta)
        grey = np.clip(np.stack([top, top - low, top - low], -1), 0, 255).astype(np.uint8)
        sat = _float32_hsv(grey)[..., 1].T  # (delta, max)
        val = _float32_hsv(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1))[..., 2]
        _HALF_TABLES.extend(np.ascontiguousarray(t.astype(np.float16).view(np.uint16)).reshape(-1)
                            for t in (hue, sat, val))
    return _HALF_TABLES[0], _HALF_TABLES[1], _HALF_TABLES[2]


def _float32_hsv(rgb: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(rgb).reshape(1, -1, 3)
    out = np.empty(flat.shape, np.float32)
    _hsv_numba_rows(flat, out)
    return out.reshape(rgb.shape)


@njit(parallel=True, nogil=True, cache=True)
def _hsv_numba_rows_lookup(rows: np.ndarray, out: np.ndarray, hue: np.ndarray, sat: np.ndarray,
                           val: np.ndarray) -> None:
    """float16 bit patterns by lookup (`_half_tables`), the branches picked as `_hsv_pixel` picks them."""
    for y in prange(rows.shape[0]):
        for x in range(rows.shape[1]):
            r, g, b = np.int32(rows[y, x, 0]), np.int32(rows[y, x, 1]), np.int32(rows[y, x, 2])
            hi = r if r > g else g
            hi = hi if hi > b else b
            lo = r if r < g else g
            lo = lo if lo < b else b
            delta = hi - lo
            out[y, x, 2] = val[hi]
            if delta == 0:
                out[y, x, 0] = 0
                out[y, x, 1] = 0
                continue
            out[y, x, 1] = sat[delta * 256 + hi]
            if hi == r:
                out[y, x, 0] = hue[(g - b + 255) * 256 + delta]
            elif hi == g:
                out[y, x, 0] = hue[(511 + b - r + 255) * 256 + delta]
            else:
                out[y, x, 0] = hue[(1022 + r - g + 255) * 256 + delta]


@cuda_kernel(cache=True)
def _hsv_cuda_kernel(rgb, out):  # noqa: ANN001 - numba.cuda kernel
    x, y = cuda.grid(2)
    if y < rgb.shape[0] and x < rgb.shape[1]:
        h, s, v = _hsv_pixel(np.int32(rgb[y, x, 0]), np.int32(rgb[y, x, 1]), np.int32(rgb[y, x, 2]))
        out[y, x, 0], out[y, x, 1], out[y, x, 2] = h, s, v


@register_kernel("hsv", "cuda")
def hsv_cuda(rgb: Any, dtype: Any = np.float32) -> Any:
    """Device (..., H, W, 3) uint8 -> device float32 or float16 (the store rounds on the device), without
    leaving the GPU."""
    d_rgb = as_device(rgb)
    flat = d_rgb.reshape(-1, *d_rgb.shape[-3:]) if d_rgb.ndim == 4 else d_rgb.reshape(1, *d_rgb.shape)
    out = cuda.device_array(flat.shape, np.dtype(dtype))
    blocks, threads = grid_2d(*flat.shape[1:3])
    for i in range(flat.shape[0]):
        _hsv_cuda_kernel[blocks, threads](flat[i], out[i])
    return out.reshape(d_rgb.shape)
