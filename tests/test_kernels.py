"""Fast paths and kernels against plain NumPy references, with stated tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from vre_fast.kernels import colormaps
from vre_fast.kernels._dispatch import get_kernel, register_kernel, registered_backends
from vre_fast.kernels.hsv import hsv_numba, hsv_numpy, rgb_to_hsv
from vre_fast.kernels.lookup import apply_lut, lut_numba, lut_numpy
from vre_fast.kernels.normals_svd import (
    depth_to_normals,
    intrinsics_from_fov,
    normals_cross_numba,
    normals_cross_numpy,
    normals_svd_numba,
    normals_svd_numpy,
)
from vre_fast.kernels.safe_landing import safe_landing

BACKENDS = ["numpy", "numba"]


def test_hsv_numba_matches_numpy_reference():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    rgb[0, :5] = [[255, 0, 1]]  # hue just below a full turn: must not wrap to 1.0
    rgb[0, 5:10] = 128  # grey: hue and saturation 0
    ref, fast = hsv_numpy(rgb), hsv_numba(rgb)
    assert fast.dtype == np.float32 and fast.shape == rgb.shape
    hue_err = np.abs(ref[..., 0] - fast[..., 0])
    hue_err = np.minimum(hue_err, 1 - hue_err)  # hue is circular
    assert hue_err.max() < 1e-6
    np.testing.assert_allclose(fast[..., 1:], ref[..., 1:], atol=1e-6)  # float32 arithmetic
    assert ref.min() >= 0 and ref.max() <= 1 and fast[..., 0].max() < 1
    assert np.array_equal(rgb_to_hsv(rgb), fast)  # host arrays dispatch to numba


def test_hsv_numba_writes_float16_exactly_as_astype_rounds():
    rgb = np.random.default_rng(2).integers(0, 256, (2, 37, 51, 3), dtype=np.uint8)
    half = hsv_numba(rgb, np.float16)
    assert half.dtype == np.float16 and half.shape == rgb.shape
    assert np.array_equal(half.view(np.uint16), hsv_numba(rgb).astype(np.float16).view(np.uint16))
    assert np.array_equal(rgb_to_hsv(rgb, dtype=np.float16).view(np.uint16), half.view(np.uint16))


def test_hsv_numba_float16_lookup_equals_the_float32_kernel_cast_on_every_colour():
    """All 2^24 RGB colours: the float16 kernel (lookups) gives exactly `astype(np.float16)` of the float32 kernel."""
    every = np.arange(1 << 24, dtype=np.uint32).view(np.uint8).reshape(1 << 12, 1 << 12, 4)[..., :3]
    half = hsv_numba(every, np.float16)
    assert np.array_equal(half.view(np.uint16), hsv_numba(every).astype(np.float16).view(np.uint16))


def test_unit_image_numba_equals_the_numpy_reference_byte_for_byte():
    from vre_fast.kernels.colormaps import unit_image_numba, unit_image_numpy

    rng = np.random.default_rng(4)
    x = rng.random((2, 30, 41, 3), dtype=np.float32) * 1.4 - 0.2
    x.flat[::7], x.flat[::11], x.flat[::13] = np.nan, np.inf, -np.inf
    x.flat[:6] = [0.5 / 255, 1.5 / 255, 254.5 / 255, 0.5, 1, 0]  # rounding at the half steps
    grey = rng.random((2, 30, 41), dtype=np.float32)
    for values in (x, grey, grey.astype(np.float16)):
        assert np.array_equal(unit_image_numba(values), unit_image_numpy(values))
    assert unit_image_numba(grey).shape == (2, 30, 41, 3)
    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(2, 128, 256)
    assert np.array_equal(unit_image_numba(every_half), unit_image_numpy(every_half))  # the float16 lookup
    assert np.array_equal(unit_image_numba(every_half.reshape(2, 128, 64, 4)[..., :3]),
                          unit_image_numpy(every_half.reshape(2, 128, 64, 4)[..., :3]))  # not contiguous


def test_hsv_pictures_of_stored_frames_equal_pictures_of_decoded_ones():
    from vre_fast.representations.hsv import HSV

    hsv = HSV("hsv", None, {}, type_name="hsv")
    stored = hsv.encode(np.random.default_rng(5).random((2, 30, 41, 3), dtype=np.float32))
    assert stored.dtype == np.float16
    assert np.array_equal(hsv.make_image_of_stored(stored), hsv.make_image(hsv.decode(stored)))


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_normals_of_known_planes(backend: str):
    """Two planes meeting at a crease: mean angular error < 0.5 deg away from the crease."""
    h, w = 60, 80
    intr = intrinsics_from_fov(75, (3840, 2160), (w, h))
    n_left, n_right = _oriented(np.array([0.3, -0.6, 0.7])), _oriented(np.array([-0.2, -0.5, 0.8]))
    left, right = _plane_depth(n_left, 10, intr, h, w), _plane_depth(n_right, 10, intr, h, w)
    depth = np.where(np.arange(w)[None] < w // 2, left, right)
    out = depth_to_normals(depth, intr, window_size=5, backend=backend)
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
            eig = s**2  # eigenvalues of the scatter matrix; collinear when their pairwise products vanish
            if eig[0] * eig[1] + eig[0] * eig[2] + eig[1] * eig[2] <= 1e-9 * eig.sum() ** 2:
                continue
            n = vt[-1]
            out[y, x] = n if n @ [(x - cx) / fx, (y - cy) / fy, 1] >= 0 else -n
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_normals_match_per_pixel_svd_with_holes(backend: str):
    rng = np.random.default_rng(3)
    h, w = 14, 18
    intr = (20.0, 21.0, 9.0, 7.0)
    depth = 5 + rng.random((h, w)) * 0.5 + np.arange(w)[None] * 0.05
    depth[3:5, 4:7] = 0  # holes: zero, NaN and inf are all invalid
    depth[9, 10] = np.nan
    depth[11, 2] = np.inf
    fast = depth_to_normals(depth.astype(np.float32), intr, window_size=5, backend=backend)
    ref = _normals_loop_reference(depth.astype(np.float32).astype(np.float64), intr, 5)
    assert np.array_equal(np.any(fast != 0, -1), np.any(ref != 0, -1))
    np.testing.assert_allclose(fast, ref, atol=1e-4)
    assert not np.any(fast[3:5, 4:7]) and not np.any(fast[9, 10]) and not np.any(fast[11, 2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_holes_do_not_bend_neighbouring_normals(backend: str):
    """Unlike VRE (zero depth as points at the origin), a hole leaves its neighbours' fits intact."""
    h, w = 40, 50
    intr = intrinsics_from_fov(75, (3840, 2160), (w, h))
    n = _oriented(np.array([0.1, -0.7, 0.7]))
    depth = _plane_depth(n, 8, intr, h, w)
    depth[18:22, 20:25] = 0
    out = depth_to_normals(depth, intr, window_size=7, backend=backend)
    valid = np.any(out != 0, -1)
    assert not valid[18:22, 20:25].any() and valid.sum() == h * w - 20
    assert _angles_deg(out[valid], n).max() < 0.1


@pytest.mark.parametrize("backend", BACKENDS)
def test_normals_window_too_small_or_collinear_is_undefined(backend: str):
    depth = np.full((9, 9), np.nan, np.float32)
    depth[4, :] = 3.0  # a single row: every window is collinear
    assert not np.any(depth_to_normals(depth, (10, 10, 4, 4), 3, backend=backend))
    with pytest.raises(ValueError, match="odd"):
        depth_to_normals(depth, (10, 10, 4, 4), 4, backend=backend)


def _scene(h: int = 54, w: int = 96, seed: int = 0) -> tuple[np.ndarray, tuple]:
    """Two noisy planes at different distances, holes of zero, NaN and inf depth."""
    rng = np.random.default_rng(seed)
    intr = intrinsics_from_fov(75, (3840, 2160), (w, h))
    left = _plane_depth(_oriented(np.array([0.0, 0.8, 0.6])), 10, intr, h, w)
    right = _plane_depth(_oriented(np.array([0.5, -0.3, 0.8])), 20, intr, h, w)
    depth = np.where(np.arange(w)[None] < w // 2, left, right) * (1 + rng.normal(0, 1e-3, (h, w)))
    depth[10:14, 20:30], depth[30, 40], depth[40, 70] = 0, np.nan, np.inf
    return depth.astype(np.float32), intr


def test_normals_numba_matches_reference_on_a_noisy_scene():
    depth, intr = _scene()
    ref, fast = normals_svd_numpy(depth, intr, 11), normals_svd_numba(depth, intr, 11)
    assert np.array_equal(np.any(ref != 0, -1), np.any(fast != 0, -1))  # same undefined pixels
    both = np.any(ref != 0, -1)
    assert _angles_deg(fast[both], ref[both]).mean() < 0.01
    np.testing.assert_allclose(fast, ref, atol=5e-3)


def test_normals_cross_numba_equals_reference():
    depth, intr = _scene()
    ref, fast = normals_cross_numpy(depth, intr, 5), normals_cross_numba(depth, intr, 5)
    assert np.array_equal(np.any(ref != 0, -1), np.any(fast != 0, -1))
    np.testing.assert_allclose(fast, ref, atol=1e-5)
    n = _oriented(np.array([0.0, 0.8, 0.6]))
    valid = np.any(fast != 0, -1)
    valid[:, 40:] = False
    assert _angles_deg(fast[valid], n).mean() < 2  # noisier than the fit, still on the plane


def test_lookup_numba_equals_numpy_and_rejects_unknown_ids():
    rng = np.random.default_rng(2)
    classes = rng.integers(0, 20, (2, 30, 40), dtype=np.uint8)
    for lut in (rng.integers(0, 255, 20, dtype=np.uint8), rng.integers(0, 255, (20, 3), dtype=np.uint8)):
        assert np.array_equal(lut_numba(classes, lut), lut_numpy(classes, lut))
    classes[1, 5, 7] = 42
    for backend in BACKENDS:
        with pytest.raises(IndexError, match="42"):
            apply_lut(classes, np.zeros(20, np.uint8), backend=backend)


@pytest.mark.parametrize("with_classes", [False, True])
def test_safe_landing_numba_equals_numpy(with_classes: bool):
    rng = np.random.default_rng(4)
    normals = rng.normal(size=(2, 20, 30, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[0, :3] = 0
    classes = rng.integers(0, 8, (2, 20, 30), dtype=np.uint8) if with_classes else None
    table = np.array([0, 1, 0, 1, 1], np.uint8) if with_classes else None  # ids 5..7: beyond the table, unsafe
    ref = safe_landing(normals, (0, 1, 0.2), 40, classes, table, backend="numpy")
    fast = safe_landing(normals, (0, 1, 0.2), 40, classes, table, backend="numba")
    assert np.array_equal(ref, fast) and 0 < ref.mean() < 1 and not ref[0, :3].any()


def test_normals_image_numba_equals_numpy():
    rng = np.random.default_rng(5)
    normals = rng.uniform(-1, 1, (2, 9, 11, 3)).astype(np.float16)
    normals[0, 0, 0] = 0
    assert np.array_equal(colormaps.normals_image_numba(normals), colormaps.normals_image_numpy(normals))


def test_dispatch_registry_fails_loudly():
    assert set(registered_backends("normals_svd")) == {"numpy", "numba", "cuda"}
    with pytest.raises(TypeError, match=r"kernel 'normals_image' has no 'cuda' implementation; registered"):
        get_kernel("normals_image", "cuda")
    with pytest.raises(ValueError, match="already has a 'numpy' implementation"):
        register_kernel("hsv", "numpy")(hsv_numpy)


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
