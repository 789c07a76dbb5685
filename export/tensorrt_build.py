"""ONNX -> TensorRT engine (FP16), with a batch profile 1..max_batch at a fixed input size. Needs a GPU."""

from __future__ import annotations

from pathlib import Path

from .spec import ExportError

__all__ = ["build_engine"]


def build_engine(onnx_path: Path, engine_path: Path, input_hw: tuple[int, int], precision: str,
                 max_batch: int) -> None:
    import tensorrt as trt

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
    elif precision != "fp32":
        raise ExportError(f"precision '{precision}' is not supported yet (fp16, fp32)")
    profile = builder.create_optimization_profile()
    h, w = input_hw
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, h, w), (max(1, max_batch // 2), 3, h, w), (max_batch, 3, h, w))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path}")
    engine_path.write_bytes(bytes(serialized))
