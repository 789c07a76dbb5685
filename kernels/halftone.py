"""CMY halftone screens: each ink channel sampled on a rotated square grid, one dot per cell, its area the
cell's mean ink (the python-halftone algorithm VRE's `soft-segmentation/python-halftone` runs, evaluated
directly per output pixel instead of drawn with PIL and rotated back).

Channel k's screen is turned by `angles[k]` degrees about the image centre. Its cells are `sample` px squares
of a canvas as large as the turned image's bounding box (PIL's `rotate(expand=True)` size), starting at the
canvas's corner; a cell's level is the mean over its sample x sample pixel centres of the channel read at the
nearest pixel (0 off the image); its dot is the disc at the cell's centre of diameter sqrt(level / 255) x
sample. An output pixel (the image at `scale` x its size) is inked where its centre lies in its cell's disc;
`antialias` averages 4 x 4 sub-pixel centres instead.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["canvas_size", "gray_component_replacement", "halftone_channel", "halftone_numba"]

ANTIALIAS = 4  # sub-pixels per side when antialiasing


def canvas_size(width: int, height: int, angle: float) -> tuple[int, int]:
    """(width, height) of an image turned by `angle` degrees with PIL's `rotate(expand=True)`."""
    r = -math.radians(angle % 360.0)
    a, b = round(math.cos(r), 15), round(math.sin(r), 15)
    cx, cy = width / 2, height / 2
    xs, ys = [], []
    for x, y in ((0, 0), (width, 0), (width, height), (0, height)):
        xs.append(a * (x - cx) + b * (y - cy) + cx)
        ys.append(-b * (x - cx) + a * (y - cy) + cy)
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def gray_component_replacement(rgb: np.ndarray, percentage: float) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) int32 C, M, Y (255 - R, ...) with `percentage` % of their common gray
    taken out (it would go to K, which the output leaves out, as VRE's does)."""
    cmy = 255 - rgb.astype(np.int32)
    if percentage:
        gray = (cmy.min(-1, keepdims=True) * percentage / 100).astype(np.int32)  # int(): positive, so floor
        cmy -= gray
    return cmy


@njit(parallel=True, nogil=True, cache=True)
def _cell_means(channel, angle, sample, canvas_w, canvas_h):  # noqa: ANN001, ANN202
    h, w = channel.shape
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ny, nx = (canvas_h + sample - 1) // sample, (canvas_w + sample - 1) // sample
    means = np.zeros((ny, nx))
    for cy in prange(ny):
        for cx in range(nx):
            total = 0.0
            for y in range(cy * sample, min(cy * sample + sample, canvas_h)):
                for x in range(cx * sample, min(cx * sample + sample, canvas_w)):
                    ux, uy = x + 0.5 - canvas_w / 2, y + 0.5 - canvas_h / 2
                    ix = math.floor(c * ux - s * uy + w / 2)
                    iy = math.floor(s * ux + c * uy + h / 2)
                    if 0 <= ix < w and 0 <= iy < h:
                        total += channel[iy, ix]
            means[cy, cx] = total / (sample * sample)
    return means


@njit(parallel=True, nogil=True, cache=True)
def _render(means, angle, sample, scale, canvas_w, canvas_h, height, width, sub, out):  # noqa: ANN001
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ny, nx = means.shape
    for i in prange(out.shape[0]):
        for j in range(out.shape[1]):
            inked = 0
            for a in range(sub):
                for b in range(sub):
                    # the sub-pixel centre, centred on the image, in input pixels; then on the canvas
                    px = (j + (b + 0.5) / sub) / scale - width / 2
                    py = (i + (a + 0.5) / sub) / scale - height / 2
                    ux = c * px + s * py + canvas_w / 2
                    uy = -s * px + c * py + canvas_h / 2
                    cx, cy = math.floor(ux / sample), math.floor(uy / sample)
                    if 0 <= cx < nx and 0 <= cy < ny:
                        dx, dy = ux - (cx + 0.5) * sample, uy - (cy + 0.5) * sample
                        if dx * dx + dy * dy <= means[cy, cx] / 255 * (sample * sample / 4):
                            inked += 1
            out[i, j] = inked / (sub * sub)


def halftone_channel(channel: np.ndarray, angle: float, sample: int, scale: int, antialias: bool) -> np.ndarray:
    """(H, W) ink levels 0..255 -> (H * scale, W * scale) float32 ink coverage in [0, 1]."""
    height, width = channel.shape
    canvas_w, canvas_h = canvas_size(width, height, angle)
    means = _cell_means(np.ascontiguousarray(channel), float(angle), sample, canvas_w, canvas_h)
    out = np.empty((height * scale, width * scale), np.float32)
    _render(means, float(angle), sample, scale, canvas_w, canvas_h, height, width, ANTIALIAS if antialias else 1,
            out)
    return out


def halftone_numba(rgb: np.ndarray, sample: int, scale: int, percentage: float, angles: tuple[float, ...],
                   antialias: bool) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * scale, W * scale, 3) float32 C, M, Y ink coverage; angles[:3] screen them."""
    cmy = gray_component_replacement(rgb, percentage)
    return np.stack([halftone_channel(cmy[..., k], angles[k], sample, scale, antialias) for k in range(3)], -1)
