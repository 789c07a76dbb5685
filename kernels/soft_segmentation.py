"""Soft segmentation from colour co-occurrence (Leordeanu, Sukthankar & Sminchisescu, "Efficient closed-form
solution to generalized boundary detection", ECCV 2012, section 4): the algorithm VRE's
`soft-segmentation/generalized-boundaries` runs, in float64 NumPy with one numba loop.

On the frame shrunk (nearest) to `internal_size` on its long side, with every channel stretched to [0, 1]:
1. each pixel's colour is one of 15 x 11 x 7 HSV bins;
2. 16 x 16 patches every 8 px say which colours they hold; the principal components of these indicator
   vectors holding half their variance span the colours that go together;
3. for 16 x 16 patches every 30 px, the patch's indicator projected on those components says how likely
   each colour is to appear with it: each pixel's colour gives one map per such patch;
4. the principal components of these maps (the largest first) are the soft segmentation, `max_channels`
   of them; optionally median-filtered (3 x 3, zero padding) and fitted linearly to the RGB (least
   squares), then resized bicubically to the frame and stretched to [0, 1] together.

Where VRE differs: it takes the eigenvectors in the order LAPACK's general `eig` returns them (unsorted,
and with arbitrary signs); here they are sorted by eigenvalue, largest first, and each one's largest
component is made positive, so the output is deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["BINS", "colour_bins", "patch_colours", "soft_segmentation"]

BINS = (15, 11, 7)  # hue, saturation, value
EPS = float(np.finfo(np.float32).eps)  # VRE's (torch float32) guard against division by zero
WINDOW, SAMPLE_STEP, FIT_STEP = 16, 30, 3


def stretch(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """(x - min) / (max - min + eps) over `axes`."""
    lo, hi = x.min(axes, keepdims=True), x.max(axes, keepdims=True)
    return (x - lo) / (hi - lo + EPS)


def shrink_nearest(image: np.ndarray, internal_size: int) -> np.ndarray:
    """(H, W, C) -> nearest-resized so the long side is about `internal_size`, as torch's
    interpolate(scale_factor=s, mode='nearest', recompute_scale_factor=False) indexes (float32 arithmetic)."""
    h, w = image.shape[:2]
    scale = internal_size / max(h, w)
    inv = np.float32(1 / scale)
    rows = np.minimum(np.floor(np.arange(int(h * scale), dtype=np.float32) * inv).astype(np.int64), h - 1)
    cols = np.minimum(np.floor(np.arange(int(w * scale), dtype=np.float32) * inv).astype(np.int64), w - 1)
    return image[rows][:, cols]


def colour_bins(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> (H, W) int64 HSV bin ids (VRE's HSV formula, each channel stretched)."""
    eps = 1e-10
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hi, lo = rgb.max(-1), rgb.min(-1)
    spread = hi - lo + eps
    hues = np.stack([60 * (b - g) / spread + 180, 60 * (r - b) / spread + 300, 60 * (g - r) / spread + 60])
    h = np.take_along_axis(hues, rgb.argmin(-1)[None], 0)[0] / 360
    hsv = stretch(np.stack([h, spread / (hi + eps), hi], -1), (0, 1))
    nh, ns, nv = BINS
    hb, sb, vb = (np.round(hsv[..., k] * (n - 1) + 1) for k, n in enumerate(BINS))
    return np.round(hb + (sb - 1) * nh + (vb - 1) * nh * ns - 1).astype(np.int64)


@njit(parallel=True, nogil=True, cache=True)
def patch_colours(bins, ys, xs, half, colours):  # noqa: ANN001, ANN201
    """(len(ys) * len(xs), colours) uint8: which colours the patch [y - half, y + half) x [x - half, x + half)
    holds, patches x-major (x outer, y inner)."""
    out = np.zeros((len(xs) * len(ys), colours), np.uint8)
    for p in prange(len(xs) * len(ys)):
        x, y = xs[p // len(ys)], ys[p % len(ys)]
        for i in range(y - half, y + half):
            for j in range(x - half, x + half):
                out[p, bins[i, j]] = 1
    return out


def _signed(vectors: np.ndarray) -> np.ndarray:
    """Each column turned so its largest-magnitude component is positive."""
    pick = np.abs(vectors).argmax(0)
    return vectors * np.where(vectors[pick, np.arange(vectors.shape[1])] < 0, -1.0, 1.0)


def _top_components(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero eigenvalues (descending) and unit eigenvectors of centred.T @ centred, from whichever of it
    and the Gram matrix centred @ centred.T is smaller (the same non-zero eigenvalues)."""
    gram = centred.shape[0] < centred.shape[1]
    values, vectors = np.linalg.eigh(centred @ centred.T if gram else centred.T @ centred)
    values, vectors = values[::-1], vectors[:, ::-1]
    keep = values > max(values[0], 0) * 1e-12
    values, vectors = values[keep], vectors[:, keep]
    return values, (centred.T @ vectors / np.sqrt(values) if gram else vectors)


def colour_tables(bins: np.ndarray) -> np.ndarray:
    """Steps 2 and 3: (K, colours) float64, one value per colour for each of the K sampling patches (its map
    is the table read at each pixel's colour)."""
    ny, nx = bins.shape
    half = WINDOW // 2
    colours = int(np.prod(BINS))
    ref = patch_colours(bins, np.arange(half, ny - half, half), np.arange(half, nx - half, half), half, colours)
    # colours no reference patch holds have zero mean and variance: the components live on the others only,
    # and their maps are 0 (c0 = c1 = 0 below)
    used = np.flatnonzero(ref.any(0))
    ref = ref[:, used].astype(np.float64)
    mean = ref.mean(0)
    values, vectors = _top_components(ref - mean)
    # components until half the variance (the trace); none for patches all alike (a flat frame)
    count = int(np.argmax(np.cumsum(values) > values.sum() * 0.5)) + 1 if len(values) else 0
    basis = vectors[:, :count]
    samples = patch_colours(bins, np.arange(half, ny - half, SAMPLE_STEP), np.arange(half, nx - half, SAMPLE_STEP),
                            half, colours)[:, used].astype(np.float64)
    match = ((samples - mean) @ basis) @ basis.T
    c0, c1 = np.maximum(mean - match, 0), np.maximum(mean + match, 0)
    tables = np.zeros((len(samples), colours))
    tables[:, used] = c1 / (c0 + c1 + EPS)
    return tables


def median3(x: np.ndarray) -> np.ndarray:
    """(C, h, w) 3 x 3 median per channel, zeros beyond the border (as torch's unfold pads)."""
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return np.median(np.stack([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)]), 0)


def fit_to_rgb(seg: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """(C, h, w) maps -> (3, h, w): the affine combination of them nearest the (h, w, 3) RGB in least squares
    on every FIT_STEP-th pixel."""
    h, w = seg.shape[1:]
    design = np.concatenate([seg, np.ones((1, h, w))])
    ys, xs = np.meshgrid(np.arange(0, h - FIT_STEP, FIT_STEP), np.arange(0, w - FIT_STEP, FIT_STEP), indexing="ij")
    coef = np.linalg.lstsq(design[:, ys, xs].reshape(len(design), -1).T, rgb[ys, xs].reshape(-1, 3), rcond=None)[0]
    return np.einsum("chw,cd->dhw", design, coef)


def soft_segmentation(frame: np.ndarray, max_channels: int = 3, median_filter: bool = False,
                      adjust_to_rgb: bool = False, internal_size: int = 300) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, C) float32 in [0, 1]: C = 3 with `adjust_to_rgb`, else max_channels (or
    the number of sampling patches, if fewer)."""
    import cv2  # only here: importing the kernels package must stay cheap

    # stretched with the whole frame's range, but only the pixels the nearest shrink keeps
    lo, hi = frame.min((0, 1)) / 255, frame.max((0, 1)) / 255
    small = (shrink_nearest(frame, internal_size) / 255 - lo) / (hi - lo + EPS)
    if min(small.shape[:2]) <= WINDOW:
        raise ValueError(f"a {frame.shape[1]}x{frame.shape[0]} frame is {small.shape[1]}x{small.shape[0]} at "
                         f"internal_size {internal_size}: its {WINDOW}-pixel patches need both sides above "
                         f"{WINDOW}; raise internal_size")
    bins = colour_bins(small)
    tables = colour_tables(bins)
    # step 4 without the (K, pixels) maps: a map is its table read at each pixel's colour, so sums over pixels
    # are sums over colours weighted by how many pixels have each; the projections are tables too
    counts = np.bincount(bins.ravel(), minlength=tables.shape[1]).astype(np.float64)
    mean = tables @ counts / bins.size  # each map's mean
    gram = (tables * counts) @ tables.T - bins.size * np.outer(mean, mean)  # centred maps' Gram matrix
    values, vectors = np.linalg.eigh(gram)
    top = _signed(vectors[:, ::-1][:, :max_channels])
    seg = (tables.T @ top - mean @ top)[bins].transpose(2, 0, 1)
    if median_filter:
        seg = median3(seg)
    if adjust_to_rgb:
        seg = fit_to_rgb(seg, small)
    h, w = frame.shape[:2]
    up = cv2.resize(np.ascontiguousarray(seg.transpose(1, 2, 0), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return stretch(up.reshape(h, w, -1), (0, 1, 2)).astype(np.float32)
