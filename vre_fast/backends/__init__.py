"""Inference backends for learned representations: torch eager (the reference), ONNX Runtime, TensorRT.

A runner maps a float32 NCHW batch (NumPy) to a tuple of NumPy outputs. `make_runner` takes the
representation's `backend` parameter; "auto" (`auto_backend`) picks the fastest installed one for the device:
on a CUDA device TensorRT FP16, then ONNX Runtime with its TensorRT / CUDA execution providers (onnxruntime-gpu),
then torch eager on the GPU, and ONNX Runtime on the CPU only last; on the CPU ONNX Runtime, then torch. What it
passed over, and why, is logged in one line (GPU packages are optional extras, imported only here and lazily).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError

__all__ = ["BACKENDS", "Runner", "auto_backend", "available_backends", "cuda_available", "make_runner",
           "ort_gpu_providers", "require_cuda"]

BACKENDS = ("torch", "onnxruntime", "tensorrt")
ORT_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
logger = logging.getLogger("vre_fast")


class Runner(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def close(self) -> None: ...


def cuda_available() -> bool:
    """A CUDA device usable by the kernels (numba) or the experts (torch), asked without importing torch."""
    from numba import cuda

    try:
        if cuda.is_available():
            return True
    except Exception:  # a missing driver raises instead of answering
        pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        return torch.cuda.is_available()
    return False


def require_cuda(names: list[str]) -> None:
    """Representations `names` will compute on a CUDA device: refuse, naming them, if there is none."""
    if names and not cuda_available():
        raise ConfigError(f"representations {names} are set to a CUDA device, and this machine has none usable; "
                          f"set device: cpu (or --device cpu)")


def available_backends(device: str) -> list[str]:
    has = {"torch": importlib.util.find_spec("torch") is not None,
           "onnxruntime": importlib.util.find_spec("onnxruntime") is not None,
           "tensorrt": importlib.util.find_spec("tensorrt") is not None and device.startswith("cuda")}
    return [b for b in BACKENDS if has[b]]


def ort_gpu_providers() -> list[str]:
    """ONNX Runtime's GPU execution providers installed here (onnxruntime-gpu has them; onnxruntime has none)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime

    return [p for p in ORT_GPU_PROVIDERS if p in onnxruntime.get_available_providers()]


def auto_backend(device: str) -> tuple[str, list[str]]:
    """The backend "auto" runs on `device`, and why each faster one was passed over (one reason each)."""
    available = available_backends(device)
    passed_over = []
    if device.startswith("cuda"):
        if "tensorrt" not in available:
            passed_over.append("tensorrt: not installed (the [trt] extra)")
        if "onnxruntime" in available:
            if ort_gpu_providers():
                return ("tensorrt" if "tensorrt" in available else "onnxruntime"), passed_over
            passed_over.append("onnxruntime: no CUDA or TensorRT execution provider (onnxruntime-gpu, the [gpu] "
                               "extra, is not installed): it would run on the CPU")
        order = ("tensorrt", "torch", "onnxruntime")
    else:
        order = ("onnxruntime", "torch")
    return next(b for b in order if b in available), passed_over


def make_runner(backend: str, device: str, torch_model: Callable[[], Any],
                onnx_file: Callable[[], Path], engine_file: Callable[[], Path]) -> Runner:
    """`torch_model`, `onnx_file`, `engine_file` build what a backend needs, only when it is chosen."""
    available = available_backends(device)
    if backend == "auto":
        backend, passed_over = auto_backend(device)
        if passed_over:
            logger.warning("backend auto on %s: %s (passed over: %s)", device, backend, "; ".join(passed_over))
    elif backend not in available:
        raise RuntimeError(f"backend '{backend}' is not available on {device} (installed: {available}); "
                           f"install its extra or choose another backend")
    if backend == "torch":
        import torch

        from .torch_runner import TorchRunner

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device '{device}' was asked for but torch sees no CUDA device here")

        return TorchRunner(torch_model(), device)
    if backend == "onnxruntime":
        from .onnxruntime_runner import OrtRunner

        return OrtRunner(onnx_file(), device)
    from .tensorrt_runner import TensorRTRunner

    return TensorRTRunner(engine_file(), device)
