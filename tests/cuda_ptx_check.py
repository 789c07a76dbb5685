"""Compiles every CUDA kernel to PTX (sm_80) with the CUDA toolkit's NVVM, no GPU needed.

The simulator checks what the kernels compute; this checks that numba's CUDA target accepts them
(the simulator runs plain Python and would not notice, e.g., an unsupported builtin). numba asks the
current device for its compute capability when it compiles a CPU-jitted helper for the GPU, so the
device query is answered with sm_80 here.
"""

from __future__ import annotations

import types as pytypes

import numba.cuda.api
import numba.cuda.dispatcher
from numba import cuda
from numba import types as t

from vre_fast.kernels import hsv, lookup, safe_landing
from vre_fast.kernels import normals_svd as ns

SM80 = pytypes.SimpleNamespace(compute_capability=(8, 0))
numba.cuda.api.get_current_device = numba.cuda.dispatcher.get_current_device = lambda: SM80

F32_2, F32_3, F64_3, F64 = t.float32[:, ::1], t.float32[:, :, ::1], t.float64[:, :, ::1], t.float64
KERNELS = [
    (hsv._hsv_cuda_kernel, (t.uint8[:, :, ::1], F32_3)),
    (hsv._hsv_cuda_kernel, (t.uint8[:, :, ::1], t.float16[:, :, ::1])),
    (ns._moments_cuda, (F32_2, F64, F64, F64, F64, F64_3)),
    (ns._running_sum_cuda, (F64_3, t.int64, t.boolean, F64_3)),
    (ns._fit_cuda, (F32_2, F64_3, F64, F64, F64, F64, t.int64, F32_3)),
    (ns._cross_cuda, (F32_2, F64, F64, F64, F64, t.int64, F32_3)),
    (lookup._lut_cuda_kernel, (t.uint8[::1], t.uint8[:, ::1], t.uint8[:, ::1])),
    (safe_landing._safe_cuda_kernel, (F32_3, F64, F64, F64, F64, t.uint8[:, ::1], t.boolean, t.uint8[::1],
                                      t.uint8[:, ::1])),
]

if __name__ == "__main__":
    for kernel, signature in KERNELS:
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(8, 0))
        assert ".entry" in ptx, kernel.py_func.__name__
    print(f"compiled {len(KERNELS)} CUDA kernels to PTX")
