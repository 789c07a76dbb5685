"""CUDA kernels against the NumPy references: on the GPU when present, else in numba's CUDA simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cuda_ptx_check import SIGNATURES, launched_kernels

CHECK = Path(__file__).with_name("cuda_kernels_check.py")
PTX_CHECK = Path(__file__).with_name("cuda_ptx_check.py")


def _cuda_toolkit() -> Path | None:
    """A CUDA toolkit with libNVVM (CUDA_HOME, else /usr/local/cuda*), for compiling without a GPU."""
    candidates = [Path(os.environ["CUDA_HOME"])] if os.environ.get("CUDA_HOME") else []
    candidates += sorted(Path("/usr/local").glob("cuda*"), reverse=True)
    for root in candidates:
        if list(root.glob("lib*/libnvvm.so*")) or list(root.glob("nvvm/lib*/libnvvm.so*")):
            return root
    return None


@pytest.mark.skipif(_cuda_toolkit() is None, reason="no CUDA toolkit with libNVVM (set CUDA_HOME) to compile PTX")
@pytest.mark.slow
def test_cuda_kernels_compile_to_ptx():
    env = {**os.environ, "CUDA_HOME": str(_cuda_toolkit())}
    proc = subprocess.run([sys.executable, str(PTX_CHECK)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compiled = [line.removeprefix("compiled ") for line in proc.stdout.splitlines() if line.startswith("compiled ")]
    assert sorted(compiled) == sorted(launched_kernels())  # every kernel the registry's cuda implementations launch


def test_every_launched_cuda_kernel_has_its_ptx_signatures():
    """Runs without a toolkit: a new kernel without argument types (or types left for a removed one) fails here."""
    kernels = launched_kernels()
    assert "hsv._hsv_cuda_kernel" in kernels and sorted(set(kernels) ^ set(SIGNATURES)) == []


@pytest.mark.slow  # about 13 s: the simulator runs every CUDA thread in Python
def test_cuda_kernels_in_the_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, str(CHECK)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all match" in proc.stdout


def _gpu_present() -> bool:
    from numba import cuda

    try:
        return cuda.is_available()
    except Exception:  # a missing driver raises rather than answering False
        return False


@pytest.mark.skipif(not _gpu_present(), reason="no CUDA GPU on this machine (the simulator test covers the code)")
def test_cuda_kernels_on_the_gpu():
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
