"""Offline toolchain: torch -> ONNX (validated against torch eager) -> TensorRT or INT8 ONNX, and the cache.

Installed as vre_fast.export. An engine is cached under <cache>/engines/<key>/, the key hashing the
representation's definition, its weights file, the input shape profile, the precision and the versions
of the tools that built it, so `vre-fast run` finds what `vre-fast export-engines` built.
"""

from .cache import engine_file, export_all, int8_onnx_file, onnx_file

__all__ = ["engine_file", "export_all", "int8_onnx_file", "onnx_file"]
