"""Each procedural representation against a direct computation of its definition."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vre_fast import ConfigError, parse_config, register_representation
from vre_fast._builder import build_graph
from vre_fast.representation import ComputeBatch, Input, Representation


def node(reprs: dict, name: str):
    return build_graph(parse_config({"representations": reprs}))[name].representation


def batch(frames=None, next_frames=None, **inputs) -> ComputeBatch:
    n = len(next(iter(inputs.values()))) if frames is None else len(frames)
    return ComputeBatch(indices=list(range(n)), frames=frames, next_frames=next_frames, inputs=inputs)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def test_flow_recovers_a_known_shift():
    base = textured(96, 128)
    shifted = np.roll(base, (2, 3), axis=(0, 1))  # content moves 3 px right, 2 px down
    rep = node({"f": {"type": "optical_flow_classical"}}, "f")
    flow = rep.compute(batch(frames=base[None], next_frames=shifted[None]))
    assert flow.shape == (1, 96, 128, 2) and flow.dtype == np.float32
    interior = flow[0, 16:-16, 16:-16] * [128, 96]  # stored in fractions of width / height
    np.testing.assert_allclose(np.median(interior.reshape(-1, 2), axis=0), [3, 2], atol=0.1)
    farneback = node({"f": {"type": "optical_flow_classical", "parameters": {"method": "farneback"}}}, "f")
    interior = farneback.compute(batch(frames=base[None], next_frames=shifted[None]))[0, 16:-16, 16:-16]
    np.testing.assert_allclose(np.median((interior * [128, 96]).reshape(-1, 2), axis=0), [3, 2], atol=0.2)


def test_canny_equals_opencv_and_round_trips():
    frames = np.stack([textured(40, 50, s) for s in range(2)])
    rep = node({"e": {"type": "edges_canny", "parameters": {"threshold1": 50, "threshold2": 120,
                                                             "l2_gradient": True}}}, "e")
    out = rep.compute(batch(frames=frames))
    for f, o in zip(frames, out):
        assert np.array_equal(o, cv2.Canny(f, 50, 120, L2gradient=True) // 255)
    decoded = rep.decode(rep.encode(out))
    assert decoded.dtype == np.float32 and np.array_equal(decoded, out)


EXTERNAL_SEG = {"type": "external", "parameters": {"path": "x", "classes": ["sky", "tree", "grass", "water", "road"]}}


def test_semantic_mapper_binary_mask_and_safe_landing():
    seg = np.array([[[0, 1, 2, 3, 4, 1]]], np.uint8)
    reprs = {
        "seg": EXTERNAL_SEG,
        "mapped": {"type": "semantic_mapper", "dependencies": ["seg"],
                   "parameters": {"mapping": {"green": ["tree", "grass"], "other": ["road", 0]}}},
        "veg": {"type": "binary_mask", "dependencies": ["mapped"], "parameters": {"classes": ["green"]}},
    }
    mapped = node(reprs, "mapped")
    out = mapped.compute(batch(semantic=seg))
    assert mapped.classes == ("green", "other")
    assert out.tolist() == [[[1, 0, 0, 255, 1, 0]]]  # water is unmapped: ignore index 255
    assert node(reprs, "veg").compute(batch(semantic=out)).tolist() == [[[0, 1, 1, 0, 0, 1]]]


def test_safe_landing_from_normals_and_semantics():
    up = [0, 1, 0]
    tilted_20 = [0, np.cos(np.radians(20)), np.sin(np.radians(20))]
    tilted_40 = [0, np.cos(np.radians(40)), np.sin(np.radians(40))]
    normals = np.array([[[up, tilted_20, tilted_40, [0, 0, 0], up]]], np.float32)
    seg = np.array([[[2, 2, 2, 2, 3]]], np.uint8)
    geometric = node({"n": {"type": "external", "parameters": {"path": "n"}},
                      "s": {"type": "safe_landing", "dependencies": ["n"], "parameters": {"max_angle_deg": 30}}}, "s")
    assert geometric.compute(batch(normals=normals)).tolist() == [[[1, 1, 0, 0, 1]]]
    semantic = node({"n": {"type": "external", "parameters": {"path": "n"}}, "seg": EXTERNAL_SEG,
                     "s": {"type": "safe_landing", "dependencies": ["n", "seg"],
                           "parameters": {"safe_classes": ["grass", "road"]}}}, "s")
    assert semantic.compute(batch(normals=normals, semantic=seg)).tolist() == [[[1, 1, 0, 0, 0]]]


def test_external_reads_npz_npy_png_and_names_missing_files(tmp_path: Path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "000000.npz", depth=a)
    np.save(tmp_path / "000001.npy", a + 1)
    cv2.imwrite(str(tmp_path / "000002.png"), np.full((3, 4), 7, np.uint8))
    rep = node({"d": {"type": "from_disk", "parameters": {"path": str(tmp_path), "pattern": "{frame:06d}"}}}, "d")
    out = rep.compute(ComputeBatch(indices=[0, 1], frames=None, next_frames=None, inputs={}))
    assert np.array_equal(out, np.stack([a, a + 1]))
    png = rep.compute(ComputeBatch(indices=[2], frames=None, next_frames=None, inputs={}))
    assert png.dtype == np.uint8 and (png == 7).all()
    with pytest.raises(FileNotFoundError, match=r"no file for frame 5 in .* \(looked for 000005\.npz, 000005\.npy"):
        rep.compute(ComputeBatch(indices=[5], frames=None, next_frames=None, inputs={}))


def test_normals_orientation_and_method_parameters():
    h, w = 20, 30
    depth = np.full((1, h, w), 5.0, np.float32)  # a wall facing the camera
    base = {"d": {"type": "external", "parameters": {"path": "d"}}}
    for params, expected_z in (({}, 1.0), ({"orientation": "camera"}, -1.0), ({"method": "cross"}, 1.0)):
        rep = node({**base, "n": {"type": "normals_svd", "dependencies": ["d"],
                                  "parameters": {"sensor_fov": 60, "window_size": 3, **params}}}, "n")
        out = rep.compute(batch(depth=depth))
        np.testing.assert_allclose(out[0, 5:-5, 5:-5, 2], expected_z, atol=1e-6)


@register_representation("test_bound_scale")
class BoundScale(Representation):
    """Derives its state in `bind` from a dependency; `validate` only checks."""

    inputs = (Input("source"),)
    calls: list[str] = []

    def validate(self) -> None:
        type(self).calls.append("validate")
        if self.dependencies["source"].classes is None:
            raise ValueError("the source must declare its classes")

    def bind(self) -> None:
        type(self).calls.append("bind")
        self.scale = 1 / len(self.dependencies["source"].classes)
        if self.scale < 0.5:
            raise ValueError(f"{len(self.dependencies['source'].classes)} classes: at most 2")

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.inputs["source"] * self.scale


def test_the_constructor_validates_then_binds_once_and_either_rejects_the_node():
    source = {"type": "external", "parameters": {"path": "s", "classes": ["sky", "road"]}}
    BoundScale.calls = []
    rep = node({"s": source, "x": {"type": "test_bound_scale", "dependencies": ["s"]}}, "x")
    assert BoundScale.calls == ["validate", "bind"] and rep.scale == 0.5
    with pytest.raises(ConfigError, match=r"representations\.x: 3 classes: at most 2"):
        node({"s": {**source, "parameters": {"path": "s", "classes": ["a", "b", "c"]}},
              "x": {"type": "test_bound_scale", "dependencies": ["s"]}}, "x")
    BoundScale.calls = []
    with pytest.raises(ConfigError, match=r"representations\.x: the source must declare its classes"):
        node({"s": {"type": "external", "parameters": {"path": "s"}},
              "x": {"type": "test_bound_scale", "dependencies": ["s"]}}, "x")
    assert BoundScale.calls == ["validate"]  # a node that fails its checks derives nothing
