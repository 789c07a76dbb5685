"""torch -> ONNX with a dynamic batch axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_onnx", "max_abs_diff"]


def export_onnx(model: Any, sample: np.ndarray, path: Path, opset: int) -> list[str]:
    """Exports `model` (NCHW float32 in, one or more tensors out); returns the output names."""
    import torch

    model = model.eval()
    x = torch.from_numpy(sample)
    with torch.inference_mode():
        out = model(x)
    count = len(out) if isinstance(out, (tuple, list)) else 1
    names = [f"output{i}" for i in range(count)]
    torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=names, opset_version=opset,
                      dynamic_axes={n: {0: "batch"} for n in ["input", *names]}, dynamo=False)
    return names


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
