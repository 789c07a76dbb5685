"""The representations VRE has beyond the core set (SIFT, halftone, generalized boundaries) and the segmenters'
class probabilities (VRE's `disk_data_argmax: false`), each against a direct computation of its definition."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import rep_of
from numpy.lib.stride_tricks import sliding_window_view

from vre_fast import ConfigError, RunOptions, parse_config, run
from vre_fast._builder import build_graph
from vre_fast.errors import StoreError
from vre_fast.kernels.halftone import canvas_size
from vre_fast.kernels.lookup import argmax_numba, argmax_numpy, class_argmax
from vre_fast.representation import ComputeBatch


def textured(h: int, w: int, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), blur)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def build(reprs: dict) -> dict:
    """name -> representation of a graph built as a run builds it."""
    graph = build_graph(parse_config({"representations": reprs}))
    return {name: graph[name].representation for name in reprs}


def compute(rep, frames: np.ndarray) -> np.ndarray:  # noqa: ANN001
    rep.setup("cpu")
    try:
        return rep.compute(ComputeBatch(list(range(len(frames))), frames, None, {}))
    finally:
        rep.teardown()


# -- SIFT ------------------------------------------------------------------------------------------------------
def expected_sift_map(gray: np.ndarray, shape: tuple[int, int], scale: float = 1.0, **kwargs) -> np.ndarray:
    """OpenCV's keypoints, each pixel the largest response of those at it (a plain loop)."""
    out = np.zeros(shape, np.float32)
    for kp in cv2.SIFT_create(**kwargs).detect(gray, None):
        i = min(max(int(np.rint(kp.pt[1] / scale)), 0), shape[0] - 1)
        j = min(max(int(np.rint(kp.pt[0] / scale)), 0), shape[1] - 1)
        out[i, j] = max(out[i, j], kp.response)
    return out


def test_sift_map_is_opencvs_keypoints():
    frames = np.stack([textured(120, 160, seed) for seed in range(2)])
    out = compute(rep_of("sift"), frames)
    assert out.shape == (2, 120, 160) and out.dtype == np.float32
    for frame, got in zip(frames, out):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        want = expected_sift_map(gray, frame.shape[:2])
        assert np.count_nonzero(want) > 20 and np.array_equal(got, want)
    strongest = compute(rep_of("sift", max_keypoints=10, num_intervals=4, sigma=1.4, contrast_threshold=0.03), frames)
    gray = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    want = expected_sift_map(gray, (120, 160), nfeatures=10, nOctaveLayers=4, sigma=1.4, contrastThreshold=0.03)
    assert np.array_equal(strongest[0], want) and 0 < np.count_nonzero(want) <= 10
    small = compute(rep_of("sift", process_scale=0.5), frames[:1])[0]
    want = expected_sift_map(cv2.resize(gray, (80, 60), interpolation=cv2.INTER_LINEAR), (120, 160), scale=0.5)
    assert np.array_equal(small, want)
    rep = rep_of("sift")
    assert rep.encode(out).dtype == np.float16 and rep.make_image(rep.decode(rep.encode(out))).shape == (2, 120, 160, 3)


# -- halftone --------------------------------------------------------------------------------------------------
def halftone_reference(rgb: np.ndarray, sample: int, scale: int, percentage: float, angles, antialias: bool):  # noqa: ANN001, ANN201
    """The definition, vectorised: cell means of each turned ink channel, then which (sub-)pixel centres fall
    in their cell's disc."""
    cmy = 255 - rgb.astype(np.int64)
    gray = np.floor(cmy.min(-1, keepdims=True) * percentage / 100).astype(np.int64)
    cmy = cmy - gray
    h, w = rgb.shape[:2]
    sub = 4 if antialias else 1
    out = np.zeros((h * scale, w * scale, 3))
    for k in range(3):
        c, s = math.cos(math.radians(angles[k])), math.sin(math.radians(angles[k]))
        cw, ch = canvas_size(w, h, angles[k])
        ny, nx = -(-ch // sample), -(-cw // sample)
        y, x = np.mgrid[0:ny * sample, 0:nx * sample]
        ux, uy = x + 0.5 - cw / 2, y + 0.5 - ch / 2
        ix, iy = np.floor(c * ux - s * uy + w / 2).astype(int), np.floor(s * ux + c * uy + h / 2).astype(int)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h) & (x < cw) & (y < ch)
        level = np.where(inside, cmy[np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1), k], 0)
        means = level.reshape(ny, sample, nx, sample).sum((1, 3)) / (sample * sample)
        i, j, a, b = np.meshgrid(np.arange(h * scale), np.arange(w * scale), np.arange(sub), np.arange(sub),
                                 indexing="ij")
        px, py = (j + (b + 0.5) / sub) / scale - w / 2, (i + (a + 0.5) / sub) / scale - h / 2
        vx, vy = c * px + s * py + cw / 2, -s * px + c * py + ch / 2
        cx, cy = np.floor(vx / sample).astype(int), np.floor(vy / sample).astype(int)
        valid = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
        dx, dy = vx - (cx + 0.5) * sample, vy - (cy + 0.5) * sample
        radius2 = means[np.clip(cy, 0, ny - 1), np.clip(cx, 0, nx - 1)] / 255 * (sample * sample / 4)
        out[..., k] = (valid & (dx * dx + dy * dy <= radius2)).mean((2, 3))
    return out


@pytest.mark.parametrize("params", [dict(sample=3, scale=1, percentage=91, angles=(0, 15, 30, 45), antialias=False),
                                    dict(sample=5, scale=2, percentage=0, angles=(10, 80, 135, 0), antialias=True)])
def test_halftone_equals_the_reference(params: dict):
    frame = textured(36, 50)
    got = compute(rep_of("halftone", **params), frame[None])[0]
    want = halftone_reference(frame, **params)
    assert got.shape == (36 * params["scale"], 50 * params["scale"], 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)  # the same float64 arithmetic: exact


def test_halftone_dots_cover_pi_over_4_of_the_level_and_gcr_removes_gray():
    level = 160  # C = M = Y = 255 - 160
    frame = np.full((120, 120, 3), level, np.uint8)
    out = compute(rep_of("halftone", sample=12, scale=2, antialias=True), frame[None])[0]
    interior = out[48:192, 48:192]  # whole cells, away from the border
    np.testing.assert_allclose(interior.mean((0, 1)), math.pi / 4 * (255 - level) / 255, rtol=0.03)
    assert compute(rep_of("halftone", sample=12, percentage=100), frame[None]).max() == 0  # all gray went to K
    small = compute(rep_of("halftone", sample=4, resolution=[30, 40]), textured(60, 80)[None])
    assert small.shape == (1, 30, 40, 3)
    with pytest.raises(ConfigError, match="angles"):
        rep_of("halftone", angles=[0, 15, 30])


# -- generalized boundaries ------------------------------------------------------------------------------------
def soft_segmentation_reference(frame: np.ndarray, max_channels: int, median: bool, adjust: bool, size: int):
    """The algorithm step by step in plain NumPy loops (the covariance's SVD, not the Gram matrix's eigh)."""
    eps = float(np.finfo(np.float32).eps)

    def stretch(x, axes):  # noqa: ANN001, ANN202
        return (x - x.min(axes, keepdims=True)) / (x.max(axes, keepdims=True) - x.min(axes, keepdims=True) + eps)

    rgb = stretch(frame / 255.0, (0, 1))
    h, w = frame.shape[:2]
    f = size / max(h, w)
    inv = np.float32(1 / f)
    rows = [min(int(np.floor(np.float32(i) * inv)), h - 1) for i in range(int(h * f))]
    cols = [min(int(np.floor(np.float32(j) * inv)), w - 1) for j in range(int(w * f))]
    small = rgb[rows][:, cols]
    ny, nx = small.shape[:2]
    hsv = np.zeros_like(small)
    for i in range(ny):
        for j in range(nx):
            r, g, b = small[i, j]
            mx, mn = max(r, g, b), min(r, g, b)
            d = mx - mn + 1e-10
            k = int(np.argmin(small[i, j]))
            hue = [60 * (b - g) / d + 180, 60 * (r - b) / d + 300, 60 * (g - r) / d + 60][k]
            hsv[i, j] = hue / 360, d / (mx + 1e-10), mx
    hsv = stretch(hsv, (0, 1))
    bins = (np.round(hsv[..., 0] * 14 + 1) + (np.round(hsv[..., 1] * 10 + 1) - 1) * 15
            + (np.round(hsv[..., 2] * 6 + 1) - 1) * 165 - 1).astype(int)

    def indicators(step: int) -> np.ndarray:
        out = []
        for x in range(8, nx - 8, step):
            for y in range(8, ny - 8, step):
                v = np.zeros(1155)
                v[bins[y - 8:y + 8, x - 8:x + 8].ravel()] = 1
                out.append(v)
        return np.array(out)

    ref = indicators(8)
    mean = ref.mean(0)
    _, sv, vt = np.linalg.svd(ref - mean, full_matrices=False)
    energy = np.cumsum(sv ** 2)
    basis = vt[:np.flatnonzero(energy > energy[-1] / 2)[0] + 1].T
    maps = []
    for v in indicators(30):
        match = (v - mean) @ basis @ basis.T
        c0, c1 = np.maximum(mean - match, 0), np.maximum(mean + match, 0)
        maps.append((c1 / (c0 + c1 + eps))[bins])
    m = np.array(maps).reshape(len(maps), -1)
    m -= m.mean(1, keepdims=True)
    values, vectors = np.linalg.eigh(m @ m.T)
    seg = []
    for k in range(min(max_channels, len(maps))):
        e = vectors[:, -1 - k]
        e = -e if e[np.argmax(np.abs(e))] < 0 else e
        seg.append((m.T @ e).reshape(ny, nx))
    seg = np.array(seg)
    if median:
        seg = np.median(sliding_window_view(np.pad(seg, ((0, 0), (1, 1), (1, 1))), (3, 3), (1, 2)), (-2, -1))
    if adjust:
        ys, xs = np.meshgrid(np.arange(0, ny - 3, 3), np.arange(0, nx - 3, 3), indexing="ij")
        design = np.concatenate([seg[:, ys, xs].reshape(len(seg), -1), np.ones((1, ys.size))]).T
        coef = np.linalg.lstsq(design, small[ys, xs].reshape(-1, 3), rcond=None)[0]
        seg = np.einsum("chw,cd->dhw", np.concatenate([seg, np.ones((1, ny, nx))]), coef)
    up = cv2.resize(seg.transpose(1, 2, 0).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return stretch(up.reshape(h, w, -1), (0, 1, 2))


@pytest.mark.parametrize("median, adjust, channels", [(True, True, 3), (False, False, 4)])
def test_generalized_boundaries_equals_the_reference(median: bool, adjust: bool, channels: int):
    frame = textured(60, 96, seed=3, blur=4)
    params = dict(use_median_filtering=median, adjust_to_rgb=adjust, max_channels=channels, internal_size=96)
    got = compute(rep_of("generalized_boundaries", **params), frame[None])[0]
    want = soft_segmentation_reference(frame, channels, median, adjust, 96)
    assert got.shape == (60, 96, 3 if adjust else channels) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)  # float64 both ways; the result rounded to float32


def test_generalized_boundaries_finds_a_known_boundary():
    rng = np.random.default_rng(0)
    frame = np.zeros((64, 128, 3), np.uint8)
    frame[:, :70] = (200, 40, 40)
    frame[:, 70:] = (30, 60, 210)
    frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    seg = compute(rep_of("generalized_boundaries", max_channels=1, adjust_to_rgb=False, use_median_filtering=False,
                         internal_size=128), frame[None])[0, ..., 0]
    left, right = seg[:, :50], seg[:, 90:]
    assert abs(left.mean() - right.mean()) > 0.5 and max(left.std(), right.std()) < 0.05
    step = np.abs(np.diff(seg.mean(0)))
    assert abs(int(step.argmax()) + 1 - 70) <= 4  # the largest change is at the boundary
    flat = compute(rep_of("generalized_boundaries", internal_size=64), np.full((1, 48, 64, 3), 90, np.uint8))
    assert flat.shape == (1, 48, 64, 3) and not flat.any()  # no colour varies: nothing to segment
    with pytest.raises(ValueError, match="need both sides above 16"):
        compute(rep_of("generalized_boundaries"), np.zeros((1, 20, 400, 3), np.uint8))


def test_generalized_boundaries_from_another_representations_maps(video: Path, tmp_path: Path):
    """With `maps`, the soft segmentation of the dependency's picture (here HSV's, whose colours differ from the
    frame's), computed in a run through the engine."""
    cfg = {"representations": {
        "hsv": {"type": "hsv", "output_dtype": "float32"},
        "gb": {"type": "generalized_boundaries", "dependencies": {"maps": "hsv"},
               "parameters": {"internal_size": 64, "adjust_to_rgb": False}},
        "gb_rgb": {"type": "generalized_boundaries", "parameters": {"internal_size": 64, "adjust_to_rgb": False}}}}
    out = tmp_path / "out"
    run(video, parse_config(cfg), out, RunOptions(frames=(0, 2), progress=False))
    hsv_rep = build_graph(parse_config(cfg))["hsv"].representation
    for frame in (0, 1):
        with np.load(out / "hsv" / "npz" / f"{frame}.npz") as f:
            picture = hsv_rep.make_image(f["arr_0"][None])[0]
        with np.load(out / "gb" / "npz" / f"{frame}.npz") as f, np.load(out / "gb_rgb" / "npz" / f"{frame}.npz") as g:
            got, from_rgb = f["arr_0"].astype(np.float32), g["arr_0"].astype(np.float32)
        want = soft_segmentation_reference(picture, 3, True, False, 64)
        np.testing.assert_allclose(got, want, atol=2e-3)  # float16 storage: 2^-11 relative, values in [0, 1]
        assert np.abs(got - from_rgb).max() > 0.1  # not the frame's own segmentation


# -- class probabilities ---------------------------------------------------------------------------------------
def test_class_argmax_kernels_agree_and_take_the_lowest_id_on_ties():
    probabilities = np.random.default_rng(0).random((2, 5, 7, 9)).astype(np.float32)
    probabilities[0, 0, 0, 3:6] = 2.0
    ids = argmax_numba(probabilities)
    assert ids.dtype == np.uint8 and ids[0, 0, 0] == 3 and np.array_equal(ids, argmax_numpy(probabilities))
    wide = np.random.default_rng(1).random((3, 4, 300)).astype(np.float32)
    assert class_argmax(wide).dtype == np.uint16 and np.array_equal(class_argmax(wide), wide.argmax(-1))


@pytest.mark.parametrize("type_name, variant", [("semantic_safeuav", "150k"),  # transformers' import: 4 s of CPU
                                                pytest.param("semantic_mask2former", "test", marks=pytest.mark.slow)])
def test_stored_probabilities_agree_with_the_argmax_output(type_name: str, variant: str):
    frames = np.stack([textured(48, 64, s) for s in range(2)])
    ids_rep = rep_of(type_name, variant=variant, backend="torch")
    prob_rep = rep_of(type_name, variant=variant, backend="torch", probabilities=True)
    ids, probs = compute(ids_rep, frames), compute(prob_rep, frames)
    assert ids.dtype == np.uint8 and probs.shape == (*ids.shape, len(prob_rep.classes))
    assert np.array_equal(probs.argmax(-1), ids)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    assert probs.min() >= 0
    stored = prob_rep.encode(probs)
    assert stored.dtype == np.float16 and prob_rep.interpolation == "linear" and ids_rep.interpolation == "nearest"
    decoded = prob_rep.decode(stored)
    # float16 keeps 11 bits: the argmax may change only where the two classes were within its rounding
    changed = class_argmax(decoded) != ids
    top = np.take_along_axis(probs, ids[..., None].astype(np.int64), -1)[..., 0]
    new = np.take_along_axis(probs, class_argmax(decoded)[..., None].astype(np.int64), -1)[..., 0]
    assert changed.mean() < 0.01 and np.all((top - new)[changed] <= 2 ** -11)
    assert np.array_equal(prob_rep.make_image(decoded[:, :, :, :]), ids_rep.make_image(class_argmax(decoded)))
    assert "probabilities" not in ids_rep.definition()["parameters"]  # class maps stored before still match
    assert prob_rep.definition()["parameters"]["probabilities"] is True
    node = {"type": type_name, "parameters": {"variant": variant, "probabilities": True}, "output_dtype": "float32"}
    assert build({"s": node})["s"].storage_dtype == np.float32
    with pytest.raises(ConfigError, match="cannot hold"):
        build({"s": {**node, "parameters": {"variant": variant}}})


def test_a_run_stores_probabilities_feeds_class_dependants_and_is_not_mixed_with_class_ids(video: Path,
                                                                                          tmp_path: Path):
    def config(probabilities: bool) -> dict:
        return {"batch_size": 2, "representations": {
            "sema": {"type": "semantic_safeuav", "parameters": {"variant": "150k", "backend": "torch",
                                                                "probabilities": probabilities}},
            "mask": {"type": "binary_mask", "dependencies": ["sema"], "parameters": {"classes": ["forest", "sky"]}},
            "mapped": {"type": "semantic_mapper", "dependencies": ["sema"],
                       "parameters": {"mapping": {"green": ["forest", "hill"], "other": ["land", "road"]}}}}}

    out = tmp_path / "out"
    run(video, parse_config(config(True)), out, RunOptions(frames=(0, 2), progress=False))
    with np.load(out / "sema" / "npz" / "1.npz") as f:
        probs = f["arr_0"]
    with np.load(out / "mask" / "npz" / "1.npz") as f:
        mask = f["arr_0"]
    with np.load(out / "mapped" / "npz" / "1.npz") as f:
        mapped = f["arr_0"]
    assert probs.shape == (48, 64, 8) and probs.dtype == np.float16
    ids = probs.astype(np.float32).argmax(-1)
    assert np.array_equal(mask, np.isin(ids, [1, 6]).astype(np.uint8))
    lut = np.full(256, 255, np.uint8)
    lut[[1, 7]], lut[[0, 3]] = 0, 1
    assert np.array_equal(mapped, lut[ids])
    with pytest.raises(StoreError, match="different definition"):
        run(video, parse_config(config(False)), out, RunOptions(frames=(0, 2), progress=False))

    from vre_fast.reader import VREDataset

    item = VREDataset(out, ["sema", "mask"])[1]
    assert item["sema"].dtype.is_floating_point and tuple(item["sema"].shape) == (48, 64, 8)
    np.testing.assert_allclose(item["sema"].numpy(), probs.astype(np.float32))


def test_semantic_vote_and_safe_landing_read_the_argmax_of_probabilities():
    reps = build({"p": {"type": "semantic_safeuav", "parameters": {"variant": "150k", "probabilities": True}},
                  "i": {"type": "semantic_safeuav", "parameters": {"variant": "150k"}},
                  "n": {"type": "external", "parameters": {"path": "x"}},
                  "vote": {"type": "semantic_vote", "dependencies": ["p", "i", "i"]},
                  "safe": {"type": "safe_landing", "dependencies": {"normals": "n", "semantic": "p"},
                           "parameters": {"criterion": "vre", "safe_classes": ["land", "road"]}}})
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), (2, 6, 7)).astype(np.float32)
    ids, other = probs.argmax(-1).astype(np.uint8), rng.integers(0, 8, (2, 6, 7), dtype=np.uint8)
    vote = reps["vote"].compute(ComputeBatch([0, 1], None, None, {"semantic1": probs, "semantic2": other,
                                                                  "semantic3": other}))
    assert np.array_equal(vote, other)  # two of three agree everywhere
    vote = reps["vote"].compute(ComputeBatch([0, 1], None, None, {"semantic1": probs, "semantic2": ids,
                                                                  "semantic3": other}))
    assert np.array_equal(vote, ids)  # the probabilities' argmax is the second vote for `ids`
    normals = np.zeros((2, 6, 7, 3), np.float32)
    normals[..., 1] = 1  # flat everywhere: the classes decide
    safe = reps["safe"].compute(ComputeBatch([0, 1], None, None, {"normals": normals, "semantic": probs}))
    assert np.array_equal(safe, np.isin(ids, [0, 3]).astype(np.uint8))


def test_external_class_scores_as_vre_stores_them(tmp_path: Path):
    scores = np.random.default_rng(0).random((2, 6, 7, 3)).astype(np.float16)  # VRE's disk_data_argmax: false
    for i, s in enumerate(scores):
        np.savez(tmp_path / f"{i}.npz", s)
    classes = ["sky", "tree", "road"]
    reps = build({"seg": {"type": "external", "parameters": {"path": str(tmp_path), "classes": classes,
                                                              "probabilities": True}},
                  "mask": {"type": "binary_mask", "dependencies": ["seg"], "parameters": {"classes": ["road"]}}})
    stored = reps["seg"].compute(ComputeBatch([0, 1], None, None, {}))
    decoded = reps["seg"].decode(reps["seg"].encode(stored))
    mask = reps["mask"].compute(ComputeBatch([0, 1], None, None, {"semantic": decoded}))
    assert np.array_equal(mask, (scores.astype(np.float32).argmax(-1) == 2).astype(np.uint8))
    assert reps["seg"].make_image(decoded).shape == (2, 6, 7, 3)
    assert "probabilities" not in rep_of("external", path="x", classes=classes).definition()["parameters"]
    with pytest.raises(ValueError, match="expected"):
        build({"seg": {"type": "external", "parameters": {"path": str(tmp_path), "classes": classes[:2],
                                                          "probabilities": True}}})["seg"].compute(
            ComputeBatch([0], None, None, {}))
    with pytest.raises(ConfigError, match="need the class names"):
        rep_of("external", path="x", probabilities=True)


def test_a_vre_dataset_with_stored_class_scores_reads_and_derives(tmp_path: Path):
    """VRE 1.18.6's dataset (tests/data) with its class map replaced by float16 scores of the same argmax, as
    VRE writes a segmenter with `disk_data_argmax: false`."""
    from vre_fast.reader import VREDataset

    copy = shutil.copytree(Path(__file__).parent / "data" / "vre_1_18_6", tmp_path / "vre")
    rng = np.random.default_rng(0)
    ids = {}
    for path in sorted((copy / "semantic" / "npz").glob("*.npz")):
        with np.load(path) as f:
            ids[int(path.stem)] = f["arr_0"]
        scores = rng.random((*ids[int(path.stem)].shape, 4)) * 0.5
        np.put_along_axis(scores, ids[int(path.stem)][..., None].astype(np.int64), 1.0, -1)
        np.savez(path, scores.astype(np.float16))
    ds = VREDataset(copy, ["semantic", "bright"], classes={"semantic": ["dark", "dim", "bright", "light"]},
                    derived={"bright": {"type": "binary_mask", "dependencies": ["semantic"],
                                        "parameters": {"classes": ["bright", "light"]}}})
    item = ds[2]
    assert tuple(item["semantic"].shape) == (24, 32, 4) and item["semantic"].dtype.is_floating_point
    assert np.array_equal(item["semantic"].numpy().argmax(-1), ids[2])
    assert np.array_equal(item["bright"].numpy(), (ids[2] >= 2).astype(np.uint8))


def test_mask_vote_refuses_class_probabilities():
    with pytest.raises(ConfigError, match="stores class probabilities"):
        build({"a": {"type": "semantic_safeuav", "parameters": {"variant": "150k", "probabilities": True}},
                         "b": {"type": "semantic_safeuav", "parameters": {"variant": "150k"}},
                         "v": {"type": "mask_vote", "dependencies": ["a", "b"]}})
