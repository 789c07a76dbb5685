"""Kernel registry: `_KERNEL_REGISTRY[op][backend] -> kernel`, and the dispatch every public op goes through.

Backends: "numpy" (the reference), "numba" (CPU, parallel), "cuda" (numba.cuda on device arrays).
A public op only dispatches; the math lives in the registered kernels, which stay callable directly so
tests can compare each one with the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["BACKENDS", "backend_of", "get_kernel", "register_kernel", "registered_backends"]

BACKENDS = ("numpy", "numba", "cuda")
F = TypeVar("F", bound=Callable[..., Any])

# op name -> backend -> kernel
_KERNEL_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {}


def register_kernel(op: str, backend: str) -> Callable[[F], F]:
    """Decorator; raises on a duplicate and returns the kernel unchanged."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; known: {BACKENDS}")

    def decorator(fn: F) -> F:
        backends = _KERNEL_REGISTRY.setdefault(op, {})
        if backend in backends:
            raise ValueError(f"kernel '{op}' already has a '{backend}' implementation ({backends[backend].__name__})")
        backends[backend] = fn
        return fn

    return decorator


def registered_backends(op: str) -> tuple[str, ...]:
    return tuple(_KERNEL_REGISTRY.get(op, {}))


def backend_of(x: Any) -> str:
    """The backend that runs where `x` lives: "cuda" for device arrays, else the CPU fast path "numba"."""
    return "cuda" if hasattr(x, "__cuda_array_interface__") or hasattr(x, "copy_to_host") else "numba"


def get_kernel(op: str, backend: str) -> Callable[..., Any]:
    """The `backend` kernel of `op`."""
    backends = _KERNEL_REGISTRY.get(op)
    if not backends:
        raise TypeError(f"no kernel registered for '{op}'")
    if backend in backends:
        return backends[backend]
    raise TypeError(f"kernel '{op}' has no '{backend}' implementation; registered: {list(backends)}")
