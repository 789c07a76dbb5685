"""Compiles every CUDA kernel to PTX (sm_80) with the CUDA toolkit's NVVM, no GPU needed.

The simulator checks what the kernels compute; this checks that numba's CUDA target accepts them
(the simulator runs plain Python and would not notice, e.g., an unsupported builtin). The kernels are
the ones the registry's "cuda" implementations launch (kernels/_dispatch.py), found by `launched_kernels`,
so a new one is checked as soon as it is registered; numba compiles for given argument types, which
SIGNATURES lists per kernel (a kernel missing there fails the check by name). numba asks the current
device for its compute capability when it compiles a CPU-jitted helper for the GPU, so the device query
is answered with sm_80 here.
"""

from __future__ import annotations

import types as pytypes
from typing import Any

from numba import types as t

F32_2, F32_3, F64_3, F64 = t.float32[:, ::1], t.float32[:, :, ::1], t.float64[:, :, ::1], t.float64
# "<kernel module>.<kernel>" -> the argument types it is launched with
SIGNATURES = {
    "hsv._hsv_cuda_kernel": [(t.uint8[:, :, ::1], F32_3), (t.uint8[:, :, ::1], t.float16[:, :, ::1])],
    "normals_svd._moments_cuda": [(F32_2, F64, F64, F64, F64, F64_3)],
    "normals_svd._running_sum_cuda": [(F64_3, t.int64, t.boolean, F64_3)],
    "normals_svd._fit_cuda": [(F32_2, F64_3, F64, F64, F64, F64, t.int64, F32_3)],
    "normals_svd._cross_cuda": [(F32_2, F64, F64, F64, F64, t.int64, F32_3)],
    "lookup._lut_cuda_kernel": [(t.uint8[::1], t.uint8[:, ::1], t.uint8[:, ::1])],
    "lookup._argmax_cuda_kernel": [(F32_2, t.uint8[::1]), (t.float16[:, ::1], t.uint8[::1])],
    "safe_landing._safe_cuda_kernel": [(F32_3, F64, F64, F64, F64, t.uint8[:, ::1], t.boolean, t.uint8[::1],
                                        t.uint8[:, ::1])],
}


def launched_kernels() -> dict[str, Any]:
    """"<kernel module>.<kernel>" -> each CUDA kernel a registered "cuda" implementation launches (by name, from
    its module's globals); importing the kernels package registers them all."""
    import vre_fast.kernels  # noqa: F401
    from vre_fast.kernels._cuda import _LazyKernel
    from vre_fast.kernels._dispatch import _KERNEL_REGISTRY

    found = {}
    for backends in _KERNEL_REGISTRY.values():
        launcher = backends.get("cuda")
        if launcher is None:
            continue
        for name in launcher.__code__.co_names:
            if isinstance(launcher.__globals__.get(name), _LazyKernel):
                found[f"{launcher.__module__.rsplit('.', 1)[1]}.{name}"] = launcher.__globals__[name]
    return found


if __name__ == "__main__":
    import numba.cuda.api
    import numba.cuda.dispatcher
    from numba import cuda

    SM80 = pytypes.SimpleNamespace(compute_capability=(8, 0))
    numba.cuda.api.get_current_device = numba.cuda.dispatcher.get_current_device = lambda: SM80
    kernels = launched_kernels()
    missing = sorted(set(kernels) - set(SIGNATURES))
    assert not missing, f"no argument types in SIGNATURES for {missing}"
    for name, kernel in sorted(kernels.items()):
        for signature in SIGNATURES[name]:
            ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(8, 0))
            assert ".entry" in ptx, f"{name} {signature}"
        print(f"compiled {name}")
