"""ONNX Runtime: CPU, or CUDA / TensorRT execution providers when onnxruntime-gpu has them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = ["OrtRunner"]


def providers_for(device: str) -> list[str]:
    available = ort.get_available_providers()
    wanted = (["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.startswith("cuda") else []) + \
        ["CPUExecutionProvider"]
    return [p for p in wanted if p in available]


class OrtRunner:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, device: str):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers_for(device))
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)}))

    def close(self) -> None:
        del self.session
