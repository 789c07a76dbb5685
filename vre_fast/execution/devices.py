"""Where arrays live: the host, or a CUDA device reached through numba.cuda. Only the runtime moves arrays
between them (the host-to-device and device-to-host operators); representations and kernels receive
arrays already in place and return arrays where they computed them."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["CudaDevice", "Device", "HOST", "HostDevice", "can_pin_memory", "device_named", "is_device_array"]


def is_device_array(x: Any) -> bool:
    """A numba device array or any object exposing `__cuda_array_interface__` (CuPy, torch on CUDA)."""
    return hasattr(x, "copy_to_host") or hasattr(x, "__cuda_array_interface__")


class Device(Protocol):
    name: str  # "cpu", "cuda", "cuda:1"
    kind: str  # a kernel backend family: "cpu" or "cuda"

    def put(self, host: np.ndarray) -> Any: ...

    def fetch(self, array: Any) -> np.ndarray: ...


class HostDevice:
    """The CPU: arrays are NumPy arrays and nothing moves."""

    name = kind = "cpu"

    def put(self, host: np.ndarray) -> np.ndarray:
        return host

    def fetch(self, array: Any) -> np.ndarray:
        return array


class CudaDevice:
    """A CUDA device: NumPy in, numba device arrays out. Copies from pinned host memory (the frame ring's
    slots on CUDA runs) go at full bandwidth."""

    kind = "cuda"

    def __init__(self, name: str):
        self.name = name

    def put(self, host: np.ndarray) -> Any:
        """Into the thread's current CUDA context, where numba launches the kernels too."""
        from numba import cuda

        return cuda.to_device(np.ascontiguousarray(host))

    def fetch(self, array: Any) -> np.ndarray:
        if hasattr(array, "copy_to_host"):
            return array.copy_to_host()
        from numba import cuda

        return cuda.as_cuda_array(array).copy_to_host()


HOST = HostDevice()


def can_pin_memory() -> bool:
    """Page-locked host memory needs a CUDA driver (through torch); numba's CUDA simulator has none."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def device_named(name: str) -> Device:
    """The device of a config's `device:` value ("cpu", "cuda", "cuda:N")."""
    return HOST if name == "cpu" else CudaDevice(name)
