"""Fast paths and kernels against plain NumPy references, with stated tolerances."""

from __future__ import annotations

import numpy as np
import pytest
from vre_fast.kernels import colormaps
from vre_fast.kernels.hsv import hsv_numpy, hsv_opencv
from vre_fast.kernels.normals_svd import intrinsics_from_fov, normals_svd_numpy


def test_hsv_opencv_matches_numpy_reference():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    rgb[0, :5] = [[255, 0, 1]]  # hue just below a full turn: must not wrap to 1.0
    rgb[0, 5:10] = 128  # grey: hue and saturation 0
    ref, fast = hsv_numpy(rgb), hsv_opencv(rgb)
    assert fast.dtype == np.float32 and fast.shape == rgb.shape
    hue_err = np.abs(ref[..., 0] - fast[..., 0])
    hue_err = np.minimum(hue_err, 1 - hue_err)  # hue is circular
    assert hue_err.max() < 1e-5
    np.testing.assert_allclose(fast[..., 1:], ref[..., 1:], atol=1e-5)  # float32 arithmetic in OpenCV
    assert ref.min() >= 0 and ref.max() <= 1 and fast[..., 0].max() < 1


def test_hsv_reference_known_colours():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], np.uint8)
    np.testing.assert_allclose(hsv_numpy(rgb)[0], [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 1], [0, 0, 0]],
                               atol=1e-7)


def _plane_depth(normal: np.ndarray, offset: float, intr, h: int, w: int) -> np.ndarray:
    """Depth along each pixel's ray to the plane n.X = offset."""
    fx, fy, cx, cy = intr
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones((h, w))], -1)
    return offset / (rays @ normal)


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _oriented(n: np.ndarray) -> np.ndarray:
    """The plane normal as the kernel must orient it: away from the camera (n.z > 0 at the centre ray)."""
    n = n / np.linalg.norm(n)
    return n if n[2] > 0 else -n


def test_normals_of_known_planes():
    """Two planes meeting at a crease: mean angular error < 0.5 deg away from the crease."""
    h, w = 60, 80
    intr = intrinsics_from_fov(75, (3840, 2160), (w, h))
    n_left, n_right = _oriented(np.array([0.3, -0.6, 0.7])), _oriented(np.array([-0.2, -0.5, 0.8]))
    left, right = _plane_depth(n_left, 10, intr, h, w), _plane_depth(n_right, 10, intr, h, w)
    depth = np.where(np.arange(w)[None] < w // 2, left, right)
    out = normals_svd_numpy(depth, intr, window_size=5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1, atol=1e-5)
    away = np.abs(np.arange(w) - w // 2) > 3
    err_left = _angles_deg(out[:, : w // 2][:, away[: w // 2]], n_left)
    err_right = _angles_deg(out[:, w // 2:][:, away[w // 2:]], n_right)
    assert err_left.mean() < 0.5 and err_right.mean() < 0.5


def _normals_loop_reference(depth: np.ndarray, intr, window_size: int) -> np.ndarray:
    """Literal per-pixel SVD over the valid in-image points of each window (slow; tiny inputs only)."""
    fx, fy, cx, cy = intr
    h, w = depth.shape
    r = window_size // 2
    out = np.zeros((h, w, 3))
    for y in range(h):
        for x in range(w):
            if not (np.isfinite(depth[y, x]) and depth[y, x] > 0):
                continue
            pts = []
            for yy in range(max(0, y - r), min(h, y + r + 1)):
                for xx in range(max(0, x - r), min(w, x + r + 1)):
                    d = depth[yy, xx]
                    if np.isfinite(d) and d > 0:
                        pts.append([d * (xx - cx) / fx, d * (yy - cy) / fy, d])
            if len(pts) < 3:
                continue
            pts = np.array(pts)
            _, s, vt = np.linalg.svd(pts - pts.mean(0))
            if s[1] <= 1e-9 * max(s[0], 1e-300) ** 1:
                continue
            n = vt[-1]
            out[y, x] = n if n @ [(x - cx) / fx, (y - cy) / fy, 1] >= 0 else -n
    return out


def test_normals_match_per_pixel_svd_with_holes():
    rng = np.random.default_rng(3)
    h, w = 14, 18
    intr = (20.0, 21.0, 9.0, 7.0)
    depth = 5 + rng.random((h, w)) * 0.5 + np.arange(w)[None] * 0.05
    depth[3:5, 4:7] = 0  # holes: zero, NaN and inf are all invalid
    depth[9, 10] = np.nan
    depth[11, 2] = np.inf
    fast = normals_svd_numpy(depth, intr, window_size=5)
    ref = _normals_loop_reference(depth, intr, 5)
    assert np.array_equal(np.any(fast != 0, -1), np.any(ref != 0, -1))
    np.testing.assert_allclose(fast, ref, atol=1e-4)
    assert not np.any(fast[3:5, 4:7]) and not np.any(fast[9, 10]) and not np.any(fast[11, 2])


def test_holes_do_not_bend_neighbouring_normals():
    """Unlike VRE (zero depth as points at the origin), a hole leaves its neighbours' fits intact."""
    h, w = 40, 50
    intr = intrinsics_from_fov(75, (3840, 2160), (w, h))
    n = _oriented(np.array([0.1, -0.7, 0.7]))
    depth = _plane_depth(n, 8, intr, h, w)
    depth[18:22, 20:25] = 0
    out = normals_svd_numpy(depth, intr, window_size=7)
    valid = np.any(out != 0, -1)
    assert not valid[18:22, 20:25].any() and valid.sum() == h * w - 20
    assert _angles_deg(out[valid], n).max() < 0.1


def test_normals_window_too_small_or_collinear_is_undefined():
    depth = np.full((9, 9), np.nan)
    depth[4, :] = 3.0  # a single row: every window is collinear
    assert not np.any(normals_svd_numpy(depth, (10, 10, 4, 4), 3))
    with pytest.raises(ValueError, match="odd"):
        normals_svd_numpy(depth, (10, 10, 4, 4), 4)


def test_colormaps_shapes_and_invalid_pixels():
    depth = np.linspace(1, 5, 2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    depth[0, 0, 0] = 0
    img = colormaps.depth_to_image(depth)
    assert img.shape == (2, 6, 7, 3) and img.dtype == np.uint8 and not img[0, 0, 0].any()
    normals = np.zeros((1, 4, 4, 3), np.float32)
    normals[0, 1:] = [0, 0, 1]
    img = colormaps.normals_to_image(normals)
    assert not img[0, 0].any() and (img[0, 1:] == [128, 128, 255]).all()
    classes = colormaps.classes_to_image(np.array([[[0, 1, 255]]], np.uint8), 2)
    assert classes[0, 0, 0].any() and not classes[0, 0, 2].any()
    flow = colormaps.flow_to_image(np.ones((1, 3, 3, 2), np.float32))
    assert flow.shape == (1, 3, 3, 3)
