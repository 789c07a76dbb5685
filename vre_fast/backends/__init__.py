"""Inference backends for learned representations: torch eager (the reference), ONNX Runtime, TensorRT.

A runner maps a float32 NCHW batch (NumPy) to a tuple of NumPy outputs. `make_runner` takes the
representation's `backend` parameter; "auto" tries TensorRT, then ONNX Runtime, then torch, skipping
the ones not installed (GPU packages are optional extras, imported only here and lazily).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError

__all__ = ["BACKENDS", "Runner", "available_backends", "cuda_available", "make_runner", "require_cuda"]

BACKENDS = ("torch", "onnxruntime", "tensorrt")
_AUTO_ORDER = ("tensorrt", "onnxruntime", "torch")


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


def make_runner(backend: str, device: str, torch_model: Callable[[], Any],
                onnx_file: Callable[[], Path], engine_file: Callable[[], Path]) -> Runner:
    """`torch_model`, `onnx_file`, `engine_file` build what a backend needs, only when it is chosen."""
    available = available_backends(device)
    if backend == "auto":
        backend = next(b for b in _AUTO_ORDER if b in available)
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
