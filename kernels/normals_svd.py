"""Camera-frame surface normals from depth by a per-pixel plane fit over a square window.

Each pixel is back-projected with pinhole intrinsics; the normal is the smallest-eigenvalue
eigenvector of the covariance of the valid 3D points in its window (the SVD plane fit).
Invalid depth (<= 0, NaN, inf) is left out of every fit instead of entering it as a point
at the origin; pixels with invalid depth, fewer than 3 valid neighbours or collinear
neighbours get the zero vector. Normals point away from the camera, as in VRE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import get_num_threads, njit, prange

from ._cuda import as_device, cuda, cuda_kernel, grid_2d
from ._dispatch import backend_of, get_kernel, register_kernel

__all__ = ["depth_to_normals", "intrinsics_from_fov", "normals_cross_cuda", "normals_cross_numba",
           "normals_cross_numpy", "normals_svd_cuda", "normals_svd_numba", "normals_svd_numpy"]

DEGENERATE = 1e-9  # a fit is undefined when the eigenvalues' pairwise products are this small next to trace^2
# fastmath without nnan/ninf: invalid depth is told apart by isfinite, which those flags would fold away
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def depth_to_normals(depth: Any, intrinsics: Intrinsics, window_size: int, method: str = "svd",
                     min_valid: int = 3, backend: str | None = None, step: int = 1, flip: bool = False) -> Any:
    """(B, H, W) or (H, W) depth -> (..., 3) float32 normals, on the backend where `depth` lives unless told.

    method "svd": the plane fit over the window; "cross": the cross product of the central differences
    at +-window_size//2 (cheaper, noisier; undefined where one of the four neighbours is invalid).
    `step` fits every step-th row and column only (`intrinsics` are those of the subsampled grid); `flip`
    turns the normals towards the camera. Both run where the depth lives, so a device input never leaves it.
    """
    _check_window(window_size)
    backend = backend or backend_of(depth)
    kernel = get_kernel(f"normals_{method}", backend)
    depth = _subsample(depth, step, backend)
    normals = kernel(depth, intrinsics, window_size, min_valid) if method == "svd" else \
        kernel(depth, intrinsics, window_size)
    return _negate(normals, backend) if flip else normals


def _subsample(depth: Any, step: int, backend: str) -> Any:
    if step == 1:
        return depth
    if backend != "cuda":
        return np.ascontiguousarray(np.asarray(depth)[..., ::step, ::step], np.float32)
    d_depth = as_device(depth)
    frames = d_depth.reshape(-1, *d_depth.shape[-2:])
    n, h, w = frames.shape[0], -(-frames.shape[1] // step), -(-frames.shape[2] // step)
    out = cuda.device_array((n, h, w), np.float32)
    blocks, threads = grid_2d(h, w)
    for i in range(n):
        _subsample_cuda[blocks, threads](frames[i], step, out[i])
    return out.reshape((*d_depth.shape[:-2], h, w))


def _negate(normals: Any, backend: str) -> Any:
    if backend != "cuda":
        return -normals
    flat = normals.reshape(normals.size)
    _negate_cuda[(flat.size + 255) // 256, 256](flat)
    return normals


def _check_window(window_size: int) -> None:
    if window_size < 3 or window_size % 2 == 0:
        raise ValueError(f"window_size must be odd and >= 3, got {window_size}")

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


@register_kernel("normals_svd", "numpy")
def normals_svd_numpy(depth: np.ndarray, intrinsics: Intrinsics, window_size: int,
                      min_valid: int = 3) -> np.ndarray:
    """Reference: float64 moments by prefix sums, then `np.linalg.eigh` per pixel. A window is degenerate
    (collinear points) when the eigenvalues' pairwise products are tiny next to the squared trace."""
    _check_window(window_size)
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
    trace = eigvals.sum(-1)
    pairwise = eigvals[..., 0] * eigvals[..., 1] + eigvals[..., 0] * eigvals[..., 2] + eigvals[..., 1] * eigvals[..., 2]
    defined = valid & (count >= min_valid) & (trace > 0) & (pairwise > DEGENERATE * trace**2)
    out = np.where(defined[..., None], normals, 0.0).astype(np.float32)
    return out[0] if squeeze else out


def _rays(h: int, w: int, intrinsics: Intrinsics) -> np.ndarray:
    fx, fy, cx, cy = intrinsics
    return np.stack(np.broadcast_arrays(((np.arange(w) - cx) / fx)[None, :], ((np.arange(h) - cy) / fy)[:, None],
                                        np.ones((1, 1))), -1)


@register_kernel("normals_cross", "numpy")
def normals_cross_numpy(depth: np.ndarray, intrinsics: Intrinsics, window_size: int) -> np.ndarray:
    """Reference of the cheap variant: n = (P[x+r] - P[x-r]) x (P[y+r] - P[y-r]), oriented like the fit."""
    _check_window(window_size)
    squeeze = depth.ndim == 2
    d = np.asarray(depth, np.float64).reshape((-1, *depth.shape[-2:]))
    _, h, w = d.shape
    r = window_size // 2
    valid = np.isfinite(d) & (d > 0)
    rays = _rays(h, w, intrinsics)
    p = np.where(valid, d, 0.0)[..., None] * rays
    out = np.zeros((*d.shape, 3))
    dx = p[:, r:-r, 2 * r:] - p[:, r:-r, : -2 * r]
    dy = p[:, 2 * r:, r:-r] - p[:, : -2 * r, r:-r]
    n = np.cross(dx, dy)
    ok = (valid[:, r:-r, 2 * r:] & valid[:, r:-r, : -2 * r] & valid[:, 2 * r:, r:-r] & valid[:, : -2 * r, r:-r]
          & valid[:, r:-r, r:-r])
    length = np.linalg.norm(n, axis=-1)
    ok &= length > 0
    n = n / np.where(ok, length, 1.0)[..., None]
    n = np.where((np.sum(n * rays[r:-r, r:-r], -1) < 0)[..., None], -n, n)
    out[:, r:-r, r:-r] = np.where(ok[..., None], n, 0.0)
    out = out.astype(np.float32)
    return out[0] if squeeze else out


# -- numba CPU -------------------------------------------------------------------------------------------

@njit(inline="always")
def _smallest_eigenvalue(a, b, c, d, e, f, t, c1):  # noqa: ANN001, ANN202
    """Smallest root of det(C - l*I) = -l^3 + t*l^2 - c1*l + c0 (all roots real, >= 0). Newton from 0 climbs
    monotonically to it, in one or two steps when it is far below the others (a plane); when it has not
    settled after a few steps (nearly equal eigenvalues), the trigonometric solution is used instead."""
    c0 = a * (d * f - e * e) - b * (b * f - e * c) + c * (b * e - d * c)
    lam = 0.0
    for _ in range(6):
        step = (((t - lam) * lam - c1) * lam + c0) / (-3.0 * lam * lam + 2.0 * t * lam - c1)
        lam -= step
        if abs(step) <= 1e-12 * t:
            return lam
    q = t / 3.0
    p = math.sqrt(((a - q) ** 2 + (d - q) ** 2 + (f - q) ** 2 + 2.0 * (b * b + c * c + e * e)) / 6.0 + 1e-300)
    ba, bd, bf, bb, bc, be = (a - q) / p, (d - q) / p, (f - q) / p, b / p, c / p, e / p
    half_det = 0.5 * (ba * (bd * bf - be * be) - bb * (bb * bf - be * bc) + bc * (bb * be - bd * bc))
    half_det = 1.0 if half_det > 1.0 else (-1.0 if half_det < -1.0 else half_det)
    return q + 2.0 * p * math.cos(math.acos(half_det) / 3.0 + 2.0 * math.pi / 3.0)


@njit(inline="always")
def _fit_normal(n, sx, sy, sz, sxx, sxy, sxz, syy, syz, szz, rx, ry, min_valid):  # noqa: ANN001, ANN202
    """Smallest eigenvector of the window covariance from its moments, in closed form: the longest cross
    product of two rows of C - l*I for the smallest eigenvalue l; pointing away from the camera along
    the ray (rx, ry, 1); zeros when undefined."""
    if n < min_valid:
        return 0.0, 0.0, 0.0
    inv_n = 1.0 / n
    mx, my, mz = sx * inv_n, sy * inv_n, sz * inv_n
    a, b, c = sxx * inv_n - mx * mx, sxy * inv_n - mx * my, sxz * inv_n - mx * mz
    d, e, f = syy * inv_n - my * my, syz * inv_n - my * mz, szz * inv_n - mz * mz
    t = a + d + f
    c1 = a * d + a * f + d * f - b * b - c * c - e * e  # sum of the eigenvalues' pairwise products
    if t <= 0.0 or c1 <= DEGENERATE * t * t:
        return 0.0, 0.0, 0.0  # a single point or collinear points: no plane
    smallest = _smallest_eigenvalue(a, b, c, d, e, f, t, c1)
    a -= smallest
    d -= smallest
    f -= smallest
    # rows (a b c), (b d e), (c e f) of C - l*I: each cross product of two is parallel to the eigenvector
    x0, y0, z0 = b * f - c * e, c * c - a * f, a * e - b * c
    x1, y1, z1 = b * e - c * d, c * b - a * e, a * d - b * b
    x2, y2, z2 = d * f - e * e, e * c - b * f, b * e - d * c
    n0, n1, n2 = x0 * x0 + y0 * y0 + z0 * z0, x1 * x1 + y1 * y1 + z1 * z1, x2 * x2 + y2 * y2 + z2 * z2
    if n1 > n0 and n1 >= n2:
        x0, y0, z0, n0 = x1, y1, z1, n1
    elif n2 > n0:
        x0, y0, z0, n0 = x2, y2, z2, n2
    if n0 <= 0.0:
        return 0.0, 0.0, 0.0
    inv = 1.0 / math.sqrt(n0)
    if x0 * rx + y0 * ry + z0 < 0.0:
        inv = -inv
    return x0 * inv, y0 * inv, z0 * inv


@njit(inline="always")
def _moments(z, x, y, fx, fy, cx, cy):  # noqa: ANN001, ANN202
    """The 10 window moments one depth sample contributes: count, x, y, z, xx, xy, xz, yy, yz, zz."""
    if not (math.isfinite(z) and z > 0):
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    px, py = z * (x - cx) / fx, z * (y - cy) / fy
    return 1.0, px, py, z, px * px, px * py, px * z, py * py, py * z, z * z


@njit(inline="always")
def _row_window_sums(depth, y, fx, fy, cx, cy, r, line, dst):  # noqa: ANN001
    """dst[k, x] = sum of moment k over depth[y, x-r..x+r] (clipped), by a running sum along the row."""
    w = depth.shape[1]
    for x in range(w):
        m = _moments(depth[y, x], x, y, fx, fy, cx, cy)
        for k in range(10):
            line[k, x] = m[k]
    for k in range(10):
        acc = 0.0
        for x in range(min(r, w - 1) + 1):
            acc += line[k, x]
        for x in range(w):
            dst[k, x] = acc
            if x + r + 1 < w:
                acc += line[k, x + r + 1]
            if x - r >= 0:
                acc -= line[k, x - r]


@njit(inline="always")
def _accumulate(acc, rows, sign):  # noqa: ANN001
    """acc += sign * rows, as plain loops (an array expression here would allocate a temporary)."""
    for k in range(acc.shape[0]):
        for x in range(acc.shape[1]):
            acc[k, x] += sign * rows[k, x]


@njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True, error_model="numpy")
def _normals_svd_bands(depth, fx, fy, cx, cy, r, min_valid, bands, out):  # noqa: ANN001
    """Each band of rows walks down the image keeping the window moments of its current row as running
    sums over a ring of the 2r+2 latest row sums: every intermediate stays in cache (about 1 MB a band)."""
    h, w = depth.shape
    slots = 2 * r + 2
    for band in prange(bands):
        y0, y1 = band * h // bands, (band + 1) * h // bands
        ring, line, acc = np.empty((slots, 10, w)), np.empty((10, w)), np.zeros((10, w))
        for y in range(max(y0 - r, 0), min(y0 + r, h - 1) + 1):
            _row_window_sums(depth, y, fx, fy, cx, cy, r, line, ring[y % slots])
            _accumulate(acc, ring[y % slots], 1.0)
        for y in range(y0, y1):
            ry = (y - cy) / fy
            for x in range(w):
                z = depth[y, x]
                nx, ny, nz = 0.0, 0.0, 0.0
                if math.isfinite(z) and z > 0:
                    nx, ny, nz = _fit_normal(acc[0, x], acc[1, x], acc[2, x], acc[3, x], acc[4, x], acc[5, x],
                                             acc[6, x], acc[7, x], acc[8, x], acc[9, x], (x - cx) / fx, ry,
                                             min_valid)
                out[y, x, 0], out[y, x, 1], out[y, x, 2] = nx, ny, nz
            if y + 1 < y1:
                if y + r + 1 < h:
                    _row_window_sums(depth, y + r + 1, fx, fy, cx, cy, r, line, ring[(y + r + 1) % slots])
                    _accumulate(acc, ring[(y + r + 1) % slots], 1.0)
                if y - r >= 0:
                    _accumulate(acc, ring[(y - r) % slots], -1.0)


@register_kernel("normals_svd", "numba")
def normals_svd_numba(depth: np.ndarray, intrinsics: Intrinsics, window_size: int,
                      min_valid: int = 3) -> np.ndarray:
    """O(1) per pixel in the window size; agrees with the reference to ~1e-5 (float64 running sums)."""
    _check_window(window_size)
    frames = np.ascontiguousarray(depth, np.float32).reshape(-1, *depth.shape[-2:])
    out = np.empty((*frames.shape, 3), np.float32)
    fx, fy, cx, cy = map(float, intrinsics)
    bands = min(get_num_threads(), frames.shape[1])
    for i in range(len(frames)):
        _normals_svd_bands(frames[i], fx, fy, cx, cy, window_size // 2, min_valid, bands, out[i])
    return out.reshape((*depth.shape, 3))


@njit(inline="always")
def _cross_normal(zc, zr, zl, zd, zu, x, y, r, fx, fy, cx, cy):  # noqa: ANN001, ANN202
    """Normal from the depth at (x, y) and at x+-r (zr, zl) and y+-r (zd, zu); zeros if one is invalid.
    Takes samples, not the array, so CPU and CUDA kernels share it."""
    for z in (zc, zr, zl, zd, zu):
        if not (math.isfinite(z) and z > 0):
            return 0.0, 0.0, 0.0
    ux = zr * (x + r - cx) / fx - zl * (x - r - cx) / fx
    uy = (zr - zl) * (y - cy) / fy
    uz = zr - zl
    vx = (zd - zu) * (x - cx) / fx
    vy = zd * (y + r - cy) / fy - zu * (y - r - cy) / fy
    vz = zd - zu
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    if length <= 0.0:
        return 0.0, 0.0, 0.0
    if nx * (x - cx) / fx + ny * (y - cy) / fy + nz < 0.0:
        length = -length
    return nx / length, ny / length, nz / length


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _normals_cross_frame(depth, fx, fy, cx, cy, r, out):  # noqa: ANN001
    h, w = depth.shape
    for y in prange(h):
        for x in range(w):
            nx, ny, nz = 0.0, 0.0, 0.0
            if r <= y < h - r and r <= x < w - r:
                nx, ny, nz = _cross_normal(depth[y, x], depth[y, x + r], depth[y, x - r], depth[y + r, x],
                                           depth[y - r, x], x, y, r, fx, fy, cx, cy)
            out[y, x, 0], out[y, x, 1], out[y, x, 2] = nx, ny, nz


@register_kernel("normals_cross", "numba")
def normals_cross_numba(depth: np.ndarray, intrinsics: Intrinsics, window_size: int) -> np.ndarray:
    _check_window(window_size)
    frames = np.ascontiguousarray(depth, np.float32).reshape(-1, *depth.shape[-2:])
    out = np.empty((*frames.shape, 3), np.float32)
    fx, fy, cx, cy = map(float, intrinsics)
    for i in range(len(frames)):
        _normals_cross_frame(frames[i], fx, fy, cx, cy, window_size // 2, out[i])
    return out.reshape((*depth.shape, 3))


# -- CUDA -------------------------------------------------------------------------------------------------
# Same four passes on the device: moments, running sums along x (a thread per plane and row), along y
# (a thread per plane and column), per-pixel fit. Nothing leaves the GPU.

@cuda_kernel(cache=True)
def _moments_cuda(depth, fx, fy, cx, cy, planes):  # noqa: ANN001
    x, y = cuda.grid(2)
    if y < depth.shape[0] and x < depth.shape[1]:
        m = _moments(depth[y, x], x, y, fx, fy, cx, cy)
        for k in range(10):
            planes[k, y, x] = m[k]


@cuda_kernel(cache=True)
def _running_sum_cuda(src, r, along_x, dst):  # noqa: ANN001
    """A thread per (plane, line): the (2r+1) window sum along x or y, clipped at the borders."""
    i = cuda.grid(1)
    _, h, w = src.shape
    lines, length = (h, w) if along_x else (w, h)
    if i >= 10 * lines:
        return
    k, line = i // lines, i % lines
    acc = 0.0
    for j in range((r if r < length - 1 else length - 1) + 1):
        acc += src[k, line, j] if along_x else src[k, j, line]
    for j in range(length):
        if along_x:
            dst[k, line, j] = acc
            if j + r + 1 < length:
                acc += src[k, line, j + r + 1]
            if j - r >= 0:
                acc -= src[k, line, j - r]
        else:
            dst[k, j, line] = acc
            if j + r + 1 < length:
                acc += src[k, j + r + 1, line]
            if j - r >= 0:
                acc -= src[k, j - r, line]


@cuda_kernel(cache=True)
def _fit_cuda(depth, s, fx, fy, cx, cy, min_valid, out):  # noqa: ANN001
    x, y = cuda.grid(2)
    if y < depth.shape[0] and x < depth.shape[1]:
        z = depth[y, x]
        nx, ny, nz = 0.0, 0.0, 0.0
        if math.isfinite(z) and z > 0:
            nx, ny, nz = _fit_normal(s[0, y, x], s[1, y, x], s[2, y, x], s[3, y, x], s[4, y, x], s[5, y, x],
                                     s[6, y, x], s[7, y, x], s[8, y, x], s[9, y, x], (x - cx) / fx,
                                     (y - cy) / fy, min_valid)
        out[y, x, 0], out[y, x, 1], out[y, x, 2] = nx, ny, nz


@register_kernel("normals_svd", "cuda")
def normals_svd_cuda(depth: Any, intrinsics: Intrinsics, window_size: int, min_valid: int = 3) -> Any:
    """Device (B, H, W) or (H, W) float32 depth -> device float32 normals."""
    _check_window(window_size)
    d_depth = as_device(depth)
    frames = d_depth.reshape(-1, *d_depth.shape[-2:])
    _, h, w = frames.shape
    out = cuda.device_array((*frames.shape, 3), np.float32)
    planes, rows = cuda.device_array((10, h, w), np.float64), cuda.device_array((10, h, w), np.float64)
    fx, fy, cx, cy = map(float, intrinsics)
    blocks, threads = grid_2d(h, w)
    r = window_size // 2
    for i in range(frames.shape[0]):
        _moments_cuda[blocks, threads](frames[i], fx, fy, cx, cy, planes)
        _running_sum_cuda[(10 * h + 63) // 64, 64](planes, r, True, rows)
        _running_sum_cuda[(10 * w + 63) // 64, 64](rows, r, False, planes)
        _fit_cuda[blocks, threads](frames[i], planes, fx, fy, cx, cy, min_valid, out[i])
    return out.reshape((*d_depth.shape, 3))


@cuda_kernel(cache=True)
def _subsample_cuda(src, step, out):  # noqa: ANN001
    x, y = cuda.grid(2)
    if y < out.shape[0] and x < out.shape[1]:
        out[y, x] = src[y * step, x * step]


@cuda_kernel(cache=True)
def _negate_cuda(flat):  # noqa: ANN001
    i = cuda.grid(1)
    if i < flat.size:
        flat[i] = -flat[i]


@cuda_kernel(cache=True)
def _cross_cuda(depth, fx, fy, cx, cy, r, out):  # noqa: ANN001
    x, y = cuda.grid(2)
    h, w = depth.shape
    if y < h and x < w:
        nx, ny, nz = 0.0, 0.0, 0.0
        if r <= y < h - r and r <= x < w - r:
            nx, ny, nz = _cross_normal(depth[y, x], depth[y, x + r], depth[y, x - r], depth[y + r, x],
                                       depth[y - r, x], x, y, r, fx, fy, cx, cy)
        out[y, x, 0], out[y, x, 1], out[y, x, 2] = nx, ny, nz


@register_kernel("normals_cross", "cuda")
def normals_cross_cuda(depth: Any, intrinsics: Intrinsics, window_size: int) -> Any:
    _check_window(window_size)
    d_depth = as_device(depth)
    frames = d_depth.reshape(-1, *d_depth.shape[-2:])
    out = cuda.device_array((*frames.shape, 3), np.float32)
    blocks, threads = grid_2d(*frames.shape[1:])
    fx, fy, cx, cy = map(float, intrinsics)
    for i in range(frames.shape[0]):
        _cross_cuda[blocks, threads](frames[i], fx, fy, cx, cy, window_size // 2, out[i])
    return out.reshape((*d_depth.shape, 3))
