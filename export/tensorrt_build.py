"""ONNX -> TensorRT engine (FP16 or FP32), with a batch profile 1..max_batch at a fixed input size.

Only `build_engine` and `current_gpu` need TensorRT or a GPU, and both import what they need when called.
The profile comes from the ONNX model's own graph inputs (`network_inputs`, `optimisation_profile`: pure,
so they are tested without a GPU): their names, ranks and channel counts differ between experts (3 for an
RGB network, 6 for a flow network's two frames, 7 for Marigold's RGB and latent noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .spec import ExportError

__all__ = ["GpuIdentity", "NetworkInput", "ProfileShapes", "build_engine", "current_gpu", "network_inputs",
           "optimisation_profile"]


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is tied to: TensorRT tunes its kernels for one GPU model and compute capability, and
    an engine built for one does not run on another. Part of the engine cache key."""

    name: str  # e.g. "NVIDIA H200"
    compute_capability: tuple[int, int]  # (major, minor), e.g. (9, 0)


class NetworkInput(NamedTuple):
    """One graph input of an ONNX model: its name and dims, None where a dim is symbolic (dynamic)."""

    name: str
    dims: tuple[int | None, ...]


class ProfileShapes(NamedTuple):
    """The (min, opt, max) shapes TensorRT's optimisation profile sets for one input."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


def current_gpu(device: str) -> GpuIdentity:
    """The GPU `device` ("cuda" or "cuda:N") names, asked of torch.cuda (the TensorRT runner's CUDA API).
    The only part of the engine cache that touches a GPU."""
    import torch

    properties = torch.cuda.get_device_properties(torch.device(device))
    return GpuIdentity(properties.name, (properties.major, properties.minor))


def network_inputs(model: Any) -> tuple[NetworkInput, ...]:
    """The real inputs of an onnx.ModelProto: its graph inputs, less the initializers older exporters also
    list there (weights are not inputs TensorRT takes shapes for)."""
    weights = {initializer.name for initializer in model.graph.initializer}
    return tuple(NetworkInput(value.name, tuple(d.dim_value if d.HasField("dim_value") else None
                                                for d in value.type.tensor_type.shape.dim))
                 for value in model.graph.input if value.name not in weights)


def optimisation_profile(inputs: tuple[NetworkInput, ...], input_hw: tuple[int, int],
                         max_batch: int) -> dict[str, ProfileShapes]:
    """Shapes for each input: the batch (dim 0) from 1 to `max_batch`, tuned for half of it; the spatial
    dims of an NCHW input from `input_hw`; every other dim (the channels) as the model fixes it. A dim the
    model leaves open and that is neither is refused, as is a fixed spatial size other than `input_hw`."""
    profile = {}
    for name, dims in inputs:
        if not dims:
            raise ExportError(f"input '{name}' is a scalar: TensorRT's batch profile needs a batch axis")
        rest = list(dims[1:])
        if len(dims) == 4:  # NCHW
            if any(dim is not None and dim != wanted for dim, wanted in zip(dims[2:], input_hw)):
                raise ExportError(f"input '{name}' is fixed at {dims[2:]} by the ONNX model, not the requested "
                                  f"{input_hw}: export it again at that size")
            rest[1:] = input_hw
        if None in rest:
            raise ExportError(f"input '{name}' has dims {dims}: dim {rest.index(None) + 1} is dynamic, and only "
                              f"the batch (dim 0) and the spatial dims of an NCHW input are given a size")
        batches = (1, max(1, max_batch // 2), max_batch) if dims[0] is None else (dims[0],) * 3
        profile[name] = ProfileShapes(*((batch, *rest) for batch in batches))
    return profile


def build_engine(onnx_path: Path, engine_path: Path, input_hw: tuple[int, int], precision: str,
                 max_batch: int) -> None:
    """Builds the engine of `onnx_path` into `engine_path` on the current GPU. Needs TensorRT and a GPU."""
    import onnx
    import tensorrt as trt

    if precision not in ("fp16", "fp32"):
        raise ExportError(f"precision '{precision}' is not supported yet (fp16, fp32)")
    profile_shapes = optimisation_profile(network_inputs(onnx.load(str(onnx_path), load_external_data=False)),
                                          input_hw, max_batch)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shapes in profile_shapes.items():
        profile.set_shape(name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path.write_bytes(bytes(serialized))
