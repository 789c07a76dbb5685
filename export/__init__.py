"""Offline toolchain: torch -> ONNX (validated against torch eager) -> TensorRT or INT8 ONNX, and the cache.

Installed as vre_fast.export. It imports nothing of the vre_fast runtime (tests/test_layering.py checks):
the runtime describes a network in an `ExportSpec` (LearnedRepresentation.export_spec) and maps
`ExportError` onto its own errors. An engine is cached under <cache>/engines/<key>/, the key hashing the
network's definition, its weights, the input size, the precision, the versions of the tools that built it
and, for a TensorRT engine, the GPU it was built for, so `vre-fast run` finds what `vre-fast export-engines`
built.
"""

from .cache import engine_entry, engine_file, int8_onnx_file, onnx_file
from .spec import ExportError, ExportSpec
from .tensorrt_build import GpuIdentity, current_gpu

__all__ = ["ExportError", "ExportSpec", "GpuIdentity", "current_gpu", "engine_entry", "engine_file",
           "int8_onnx_file", "onnx_file"]
