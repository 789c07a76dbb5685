"""ONNX -> INT8 ONNX for ONNX Runtime: static QDQ quantization, per-channel weights, calibrated on frames.

CPUs with VNNI / dot-product instructions (most laptop and companion-computer CPUs of the last years) run
the INT8 convolutions several times faster than FP32.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

__all__ = ["quantize_int8"]


def quantize_int8(source: Path, target: Path, calibration: np.ndarray) -> None:
    """Quantizes `source` into `target`, activation ranges taken from `calibration` (N, C, H, W) one by one."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = iter([{"input": calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._inputs, None)

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # ONNX's shape inference and ORT's graph clean-up first, as ORT advises; its symbolic shape inference
        # is skipped: it gives up on some graphs (RIFE's) and then leaves its temporary files in the cwd
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
