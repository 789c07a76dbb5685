"""export/ without a GPU: the TensorRT optimisation profile read from the exported ONNX models themselves
(3, 6 and 7 input channels), the engine cache key's GPU identity, and export's refusals as VreError."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import rep_of

from vre_fast.export import ExportError, ExportSpec, GpuIdentity, engine_entry
from vre_fast.export.tensorrt_build import NetworkInput, ProfileShapes, network_inputs, optimisation_profile

H200 = GpuIdentity("NVIDIA H200", (9, 0))


pytestmark = pytest.mark.usefixtures("engine_cache")  # the session's shared export cache


@pytest.mark.parametrize("type_name, variant, channels", [
    ("edges_hed", "random", 3),  # RGB
    ("optical_flow_rife", "random", 6),  # frames t and t+1
    pytest.param("depth_marigold", "test", 7, marks=pytest.mark.slow),  # RGB and the 4 latent-noise channels
])
def test_the_profile_takes_each_experts_own_input_channels(type_name: str, variant: str, channels: int):
    pytest.importorskip("torch", reason="exporting needs the [learned] extra")
    pytest.importorskip("onnxruntime", reason="exporting needs the [learned] extra")
    onnx = pytest.importorskip("onnx", reason="exporting needs the [learned] extra")
    from vre_fast.export import onnx_file

    rep = rep_of(type_name, variant=variant)
    input_hw = rep.input_size((48, 64))
    inputs = network_inputs(onnx.load(str(onnx_file(rep.export_spec(input_hw)))))
    assert inputs == (NetworkInput("input", (None, channels, *input_hw)),)  # the batch axis is dynamic
    assert optimisation_profile(inputs, input_hw, max_batch=16) == {"input": ProfileShapes(
        (1, channels, *input_hw), (8, channels, *input_hw), (16, channels, *input_hw))}


def test_the_profile_sizes_open_spatial_dims_and_keeps_fixed_ones():
    inputs = (NetworkInput("frames", (None, 6, None, None)), NetworkInput("prompt", (None, 77)),
              NetworkInput("fixed_batch", (2, 7, 32, 64)))
    assert optimisation_profile(inputs, (32, 64), max_batch=1) == {
        "frames": ProfileShapes((1, 6, 32, 64), (1, 6, 32, 64), (1, 6, 32, 64)),
        "prompt": ProfileShapes((1, 77), (1, 77), (1, 77)),
        "fixed_batch": ProfileShapes((2, 7, 32, 64), (2, 7, 32, 64), (2, 7, 32, 64))}


@pytest.mark.parametrize("dims, message", [
    ((None, 3, 48, 64), r"input 'x' is fixed at \(48, 64\) by the ONNX model, not the requested \(32, 64\)"),
    ((None, None, 32, 64), r"input 'x' has dims \(None, None, 32, 64\): dim 1 is dynamic"),
    ((None, 8, None), r"dim 2 is dynamic"),
    ((), r"input 'x' is a scalar"),
])
def test_the_profile_refuses_dims_it_cannot_size(dims: tuple, message: str):
    with pytest.raises(ExportError, match=message):
        optimisation_profile((NetworkInput("x", dims),), (32, 64), max_batch=16)


def spec(**changes) -> ExportSpec:
    """A spec whose factories fail the test if called: computing a cache key must build nothing."""
    def never() -> None:
        pytest.fail("the cache key built the model or its input")

    base = ExportSpec(name="hed", family="edges_hed", tag="edges_hed.random", definition={"type": "edges_hed"},
                      weights_sha256="0" * 64, input_hw=(48, 64), sample_input=never, load_model=never,
                      onnx_tolerance=1e-4, int8_tolerance=0.02, output_range=1.0, cache_dir=Path("/cache"))
    return dataclasses.replace(base, **changes)


def test_the_engine_key_holds_the_gpu_it_was_built_for():
    directory, key = engine_entry(spec(), H200)
    assert key["gpu"] == "NVIDIA H200" and key["compute_capability"] == [9, 0] and key["kind"] == "tensorrt"
    assert directory.parent == Path("/cache/engines") and directory.name.startswith("edges_hed-")
    assert engine_entry(spec(), GpuIdentity("NVIDIA H200", (9, 0)))[0] == directory  # the same GPU model
    others = [GpuIdentity("NVIDIA H100 80GB HBM3", (9, 0)), GpuIdentity("NVIDIA H200", (9, 1))]
    assert len({engine_entry(spec(), gpu)[0] for gpu in others} | {directory}) == 3
    assert engine_entry(spec(), H200, max_batch=32)[0] != directory  # another batch profile
    assert engine_entry(spec(weights_sha256="1" * 64), H200)[0] != directory


def test_a_refused_export_is_a_vre_error_and_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("torch", reason="exporting needs the [learned] extra")
    pytest.importorskip("onnxruntime", reason="exporting needs the [learned] extra")
    from vre_fast.errors import VreError
    from vre_fast.representation import ComputeBatch

    monkeypatch.setenv("VRE_FAST_CACHE", str(tmp_path))
    rep = rep_of("edges_hed", variant="random", backend="onnxruntime")
    monkeypatch.setattr(rep, "onnx_tolerance", -1.0)  # no export can be that close to torch eager
    rep.setup("cpu")
    frames = np.zeros((1, 48, 64, 3), np.uint8)
    with pytest.raises(VreError, match=r"ONNX export of 'x' \(edges_hed\.random\) differs from torch eager") as caught:
        rep.compute(ComputeBatch([0], frames, None, {}))
    assert isinstance(caught.value.__cause__, ExportError)
    assert not list(tmp_path.glob("engines/*/meta.json"))
