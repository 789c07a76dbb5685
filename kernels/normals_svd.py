"""Camera-frame surface normals from depth by a per-pixel plane fit over a square window.

Each pixel is back-projected with pinhole intrinsics; the normal is the smallest-eigenvalue
eigenvector of the covariance of the valid 3D points in its window (the SVD plane fit).
Invalid depth (<= 0, NaN, inf) is left out of every fit instead of entering it as a point
at the origin; pixels with invalid depth, fewer than 3 valid neighbours or collinear
neighbours get the zero vector. Normals point away from the camera, as in VRE.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["intrinsics_from_fov", "normals_svd_numpy"]

Intrinsics = tuple[float, float, float, float]  # fx, fy, cx, cy in pixels


def intrinsics_from_fov(fov_deg: float, sensor_size: tuple[int, int], size: tuple[int, int]) -> Intrinsics:
    """Ideal pinhole for a diagonal FOV of a (width, height) sensor, rescaled to a (width, height) image."""
    sw, sh = sensor_size
    focal = math.hypot(sw / 2, sh / 2) / math.tan(math.radians(fov_deg) / 2)
    width, height = size
    return width * focal / sw, height * focal / sh, width / 2, height / 2


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Sum over a (2r+1)^2 window clipped at the borders, for (B, H, W, C); separable prefix sums."""
    for axis in (1, 2):
        n = a.shape[axis]
        pad = [(0, 0)] * a.ndim
        pad[axis] = (1, 0)
        prefix = np.pad(np.cumsum(a, axis=axis), pad)
        idx = np.arange(n)
        hi, lo = np.minimum(idx + radius + 1, n), np.maximum(idx - radius, 0)
        a = prefix.take(hi, axis=axis) - prefix.take(lo, axis=axis)
    return a


def normals_svd_numpy(depth: np.ndarray, intrinsics: Intrinsics, window_size: int,
                      min_valid: int = 3) -> np.ndarray:
    """(B, H, W) or (H, W) depth -> (..., 3) float32 unit normals (zeros where undefined)."""
    if window_size < 3 or window_size % 2 == 0:
        raise ValueError(f"window_size must be odd and >= 3, got {window_size}")
    squeeze = depth.ndim == 2
    d = np.asarray(depth, np.float64).reshape((-1, *depth.shape[-2:]))
    fx, fy, cx, cy = intrinsics
    _, h, w = d.shape
    valid = np.isfinite(d) & (d > 0)
    d = np.where(valid, d, 0.0)
    rays = np.stack(np.broadcast_arrays(((np.arange(w) - cx) / fx)[None, :],
                                        ((np.arange(h) - cy) / fy)[:, None], np.ones((1, 1))), -1)
    p = d[..., None] * rays  # (B, H, W, 3); invalid points are 0 and weigh 0 below
    iu = np.triu_indices(3)
    products = (p[..., :, None] * p[..., None, :])[..., iu[0], iu[1]]  # xx, xy, xz, yy, yz, zz
    features = np.concatenate([valid[..., None].astype(np.float64), p, products], -1)
    sums = _box_sum(features, window_size // 2)
    count, s1 = sums[..., 0], sums[..., 1:4]
    s2 = np.empty((*count.shape, 3, 3))
    s2[..., iu[0], iu[1]] = sums[..., 4:]
    s2[..., iu[1], iu[0]] = sums[..., 4:]
    safe_count = np.maximum(count, 1)[..., None, None]
    cov = s2 / safe_count - (s1[..., :, None] * s1[..., None, :]) / safe_count**2
    eigvals, eigvecs = np.linalg.eigh(cov)
    normals = eigvecs[..., :, 0]
    normals = np.where((np.sum(normals * rays, -1) < 0)[..., None], -normals, normals)
    scale = np.maximum(eigvals[..., 2], 1e-300)
    defined = valid & (count >= min_valid) & (eigvals[..., 1] > 1e-9 * scale) & (eigvals[..., 2] > 0)
    out = np.where(defined[..., None], normals, 0.0).astype(np.float32)
    return out[0] if squeeze else out
