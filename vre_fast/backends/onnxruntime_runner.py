"""ONNX Runtime: CPU, or on a CUDA device its TensorRT (FP16) and CUDA execution providers when onnxruntime-gpu
has them, each falling back to the next for the operators it cannot run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

__all__ = ["OrtRunner", "providers_for"]

logger = logging.getLogger("vre_fast")


def providers_for(device: str, trt_cache: Path | None = None) -> list[Any]:
    """The providers, in order, for `device` ("cpu", "cuda", "cuda:N"): on CUDA, TensorRT in FP16 (its engines
    cached in `trt_cache`, beside the ONNX file, so a second session does not build them again), then CUDA, then
    the CPU; the ones this onnxruntime lacks are left out (with one warning when that leaves only the CPU)."""
    available = ort.get_available_providers()
    wanted: list[Any] = []
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        trt_options: dict[str, Any] = {"device_id": index, "trt_fp16_enable": True}
        if trt_cache is not None:
            trt_options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache))
        wanted += [("TensorrtExecutionProvider", trt_options), ("CUDAExecutionProvider", {"device_id": index})]
    chosen = [p for p in wanted if p[0] in available] + ["CPUExecutionProvider"]
    if wanted and len(chosen) == 1:
        logger.warning("onnxruntime on %s: this onnxruntime has no CUDA or TensorRT execution provider "
                       "(install onnxruntime-gpu, the [gpu] extra): running on the CPU", device)
    return chosen


class OrtRunner:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, device: str):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = providers_for(device, onnx_path.parent / "ort_tensorrt")
        self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted)
        active = self.session.get_providers()
        if len(wanted) > 1 and active == ["CPUExecutionProvider"]:  # a GPU provider failed to load (CUDA, cuDNN)
            logger.warning("onnxruntime on %s: its GPU execution providers did not load (see onnxruntime's "
                           "messages above): running on the CPU", device)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)}))

    def close(self) -> None:
        del self.session
