"""Batched colour maps for `make_image`: (B, H, W[, C]) arrays -> (B, H, W, 3) uint8 pictures."""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange

from ._dispatch import get_kernel, register_kernel
from .lookup import apply_lut

__all__ = ["auto_to_image", "class_palette", "classes_to_image", "depth_to_image", "flow_to_image",
           "gray_to_image", "normals_image_numba", "normals_image_numpy", "normals_to_image", "unit_image_numba",
           "unit_image_numpy", "unit_to_image"]

IGNORE_CLASS = 255


def _lut(colormap: int) -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    return cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB).reshape(256, 3)


_VIRIDIS = _lut(cv2.COLORMAP_VIRIDIS)


def unit_to_image(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (1 or 3 channels) drawn as grey or colour; NaN is black."""
    return get_kernel("unit_image", "numba")(x)


@register_kernel("unit_image", "numpy")
def unit_image_numpy(x: np.ndarray) -> np.ndarray:
    img = (np.clip(np.nan_to_num(x.astype(np.float32)), 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 3 else img


@register_kernel("unit_image", "numba")
def unit_image_numba(x: np.ndarray) -> np.ndarray:
    """One parallel pass instead of NumPy's six (a 1080p HSV picture: several times faster); equal to the
    reference byte for byte (float32 arithmetic, the same rounding). float16 input (a stored HSV frame) is not
    widened: a float16 has 65536 values, so its pixel is a lookup in their 65536 pictures, computed once by
    this same kernel (the widening alone cost more than the drawing)."""
    out = np.empty(x.size, np.uint8)
    if x.dtype == np.float16:
        _lookup_half(np.ascontiguousarray(x).reshape(-1).view(np.uint16), _half_pictures(), out)
    else:
        _unit_image(np.ascontiguousarray(x, np.float32).reshape(-1), out)
    img = out.reshape(x.shape)
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 3 else img


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _unit_image(flat, out):  # noqa: ANN001
    step = 16384
    for chunk in prange((flat.size + step - 1) // step):
        for i in range(chunk * step, min(flat.size, (chunk + 1) * step)):
            v = flat[i]
            if v != v:  # NaN
                v = np.float32(0)
            v = min(max(v, np.float32(0)), np.float32(1))
            out[i] = np.uint8(v * np.float32(255) + np.float32(0.5))


_HALF_PICTURES: list[np.ndarray] = []


def _half_pictures() -> np.ndarray:
    """The picture value of every float16 bit pattern (index = the bits), drawn by `_unit_image`."""
    if not _HALF_PICTURES:
        every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
        table = np.empty(every.size, np.uint8)
        _unit_image(every, table)
        _HALF_PICTURES.append(table)
    return _HALF_PICTURES[0]


@njit(parallel=True, nogil=True, cache=True)
def _lookup_half(bits, table, out):  # noqa: ANN001
    step = 16384
    for chunk in prange((bits.size + step - 1) // step):
        for i in range(chunk * step, min(bits.size, (chunk + 1) * step)):
            out[i] = table[bits[i]]


def gray_to_image(x: np.ndarray) -> np.ndarray:
    """Binary or grey maps, (B, H, W) or (B, H, W, 1), scaled by each frame's maximum."""
    x = x.reshape(x.shape[:3]).astype(np.float32)
    peak = np.maximum(x.reshape(len(x), -1).max(axis=1, initial=0), 1e-12)[:, None, None]
    return unit_to_image(x / peak)


def depth_to_image(depth: np.ndarray) -> np.ndarray:
    """Per-frame 2nd..98th percentile stretch through viridis; invalid depth (<=0, NaN, inf) is black."""
    depth = depth.reshape(depth.shape[:3]).astype(np.float32)
    out = np.zeros((*depth.shape, 3), np.uint8)
    for i, d in enumerate(depth):
        valid = np.isfinite(d) & (d > 0)
        if not valid.any():
            continue
        lo, hi = np.percentile(d[valid], [2, 98])
        norm = np.clip((d - lo) / max(hi - lo, 1e-12), 0, 1)
        out[i] = np.where(valid[..., None], _VIRIDIS[(norm * 255).astype(np.uint8)], 0)
    return out


def normals_to_image(normals: np.ndarray, backend: str = "numba") -> np.ndarray:
    """Unit normals in [-1, 1] drawn as (n + 1) / 2; zero vectors (invalid) stay black."""
    return get_kernel("normals_image", backend)(normals)


@register_kernel("normals_image", "numpy")
def normals_image_numpy(normals: np.ndarray) -> np.ndarray:
    n = normals.astype(np.float32)
    valid = np.any(n != 0, axis=-1, keepdims=True)
    return np.where(valid, unit_to_image((n + 1) / 2), 0).astype(np.uint8)


@register_kernel("normals_image", "numba")
def normals_image_numba(normals: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(normals, np.float32).reshape(-1, 3)  # numba has no float16
    out = np.empty(flat.shape, np.uint8)
    _normals_image_rows(flat, out)
    return out.reshape(normals.shape)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _normals_image_rows(flat, out):  # noqa: ANN001
    for i in prange(len(flat)):
        x, y, z = flat[i, 0], flat[i, 1], flat[i, 2]
        valid = x != 0 or y != 0 or z != 0
        for j, v in enumerate((x, y, z)):
            scaled = (v + np.float32(1)) * np.float32(0.5)
            scaled = min(max(scaled, np.float32(0)), np.float32(1))
            out[i, j] = np.uint8(scaled * np.float32(255) + np.float32(0.5)) if valid else np.uint8(0)


def flow_to_image(flow: np.ndarray) -> np.ndarray:
    """Direction as hue, magnitude (relative to each frame's 99th percentile) as value."""
    out = np.empty((*flow.shape[:3], 3), np.uint8)
    for i, f in enumerate(flow.astype(np.float32)):
        mag, ang = cv2.cartToPolar(f[..., 0], f[..., 1], angleInDegrees=True)
        scale = max(float(np.percentile(mag, 99)), 1e-6)
        hsv = np.stack([ang / 2, np.full_like(mag, 255), np.clip(mag / scale, 0, 1) * 255], -1).astype(np.uint8)
        out[i] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def class_palette(n: int) -> np.ndarray:
    """Distinct, deterministic colours: golden-ratio hue steps at two brightness levels."""
    hues = (np.arange(n) * 0.61803398875 % 1.0 * 180).astype(np.uint8)
    vals = np.where(np.arange(n) % 2 == 0, 255, 170).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 200, np.uint8), vals], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def classes_to_image(classes: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Class maps through `class_palette`; the ignore index 255 is black."""
    classes = classes.reshape(classes.shape[:3])
    palette = np.zeros((256 if classes.dtype == np.uint8 else int(classes.max(initial=0)) + 1, 3), np.uint8)
    n = min(num_classes or len(palette), len(palette))
    palette[:n] = class_palette(n)
    if len(palette) > IGNORE_CLASS and (num_classes or 0) <= IGNORE_CLASS:
        palette[IGNORE_CLASS] = 0
    return apply_lut(classes, palette)


def auto_to_image(x: np.ndarray) -> np.ndarray:
    """A sensible picture for an array of unknown meaning, by its dtype and channels."""
    channels = x.shape[3] if x.ndim == 4 else 1
    if channels == 3:
        return x.astype(np.uint8) if x.dtype == np.uint8 else unit_to_image(x)
    if channels == 2:
        return flow_to_image(x)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        return gray_to_image(x) if x.max(initial=0) <= 1 else classes_to_image(x)
    return depth_to_image(x)
