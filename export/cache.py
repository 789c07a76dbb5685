"""Build-once, reuse-always ONNX files and TensorRT engines, keyed by everything that shapes them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_export import export_onnx, max_abs_diff
from .spec import ExportError, ExportSpec
from .tensorrt_build import GpuIdentity

__all__ = ["engine_entry", "engine_file", "int8_onnx_file", "onnx_file"]

logger = logging.getLogger("vre_fast")
OPSET = 18


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _key_hash(key: dict[str, Any]) -> str:
    """A short hash of a JSON-able key that does not depend on key order (the runtime's `stable_hash`, so
    the folders of entries cached before the export spec existed keep their names)."""
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _entry(spec: ExportSpec, kind: str, precision: str, **extra: Any) -> tuple[Path, dict[str, Any]]:
    """The cache directory and key of one build; `extra` adds what else shapes it (an INT8 calibration, the
    GPU of an engine)."""
    key = {"definition": dict(spec.definition), "weights_sha256": spec.weights_sha256,
           "input_hw": list(spec.input_hw), "kind": kind, "precision": precision, "opset": OPSET,
           "torch": _version("torch"), "tool": _version("onnx") if kind == "onnx" else _version("tensorrt"), **extra}
    return spec.cache_dir / "engines" / f"{spec.family}-{_key_hash(key)}", key


def _build_once(directory: Path, build: Callable[[Path], dict[str, Any]]) -> None:
    """`build(tmp)` fills a temporary directory beside `directory` and returns the metadata to record; the
    directory is then renamed into place, so a cache entry is whole or absent, and a concurrent build of the
    same entry loses the race harmlessly."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    try:
        meta = build(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(tmp, directory)
        except OSError:  # another process cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _versus_torch(spec: ExportSpec, model: Any, onnx_path: Path, sample: np.ndarray) -> dict[str, float]:
    """Largest and mean |ONNX Runtime - torch eager| on `sample`, and the output scale they are judged by."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: sample})
    with torch.inference_mode():
        ref = model(torch.from_numpy(sample))
    ref = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    return {"max_abs_diff_vs_torch": max(max_abs_diff(g, r) for g, r in zip(got, ref)),
            "mean_abs_diff_vs_torch": max(float(np.abs(g - r).mean()) for g, r in zip(got, ref)),
            "output_scale": spec.output_range or max(float(np.abs(r).max()) for r in ref)}


def onnx_file(spec: ExportSpec) -> Path:
    """The cached ONNX export of `spec` (dynamic batch), exported and validated if missing."""
    directory, key = _entry(spec, "onnx", "fp32")
    if not (directory / "meta.json").exists():
        def build(tmp: Path) -> dict[str, Any]:
            start = time.perf_counter()
            model = spec.load_model()
            sample = spec.sample_input()
            with warnings.catch_warnings():  # tracer warnings about shape-dependent Python branches
                warnings.simplefilter("ignore")
                outputs = export_onnx(model, sample, tmp / "model.onnx", OPSET)
            check = _versus_torch(spec, model, tmp / "model.onnx", sample)
            diff, scale = check["max_abs_diff_vs_torch"], check["output_scale"]
            if not diff <= spec.onnx_tolerance * max(scale, 1e-12):
                raise ExportError(f"ONNX export of '{spec.name}' ({spec.tag}) differs from torch eager by "
                                  f"{diff:.3g} (output scale {scale:.3g}; tolerance {spec.onnx_tolerance:g} of that) "
                                  f"on the validation frames; not cached")
            logger.info("%s: exported %s to %s (max |ORT - torch| = %.2g)", spec.name, spec.tag, directory, diff)
            return {**key, **check, "outputs": outputs, "tolerance": spec.onnx_tolerance,
                    "validation_input": list(sample.shape), "export_seconds": round(time.perf_counter() - start, 3)}

        _build_once(directory, build)
    return directory / "model.onnx"


def int8_onnx_file(spec: ExportSpec, calibration: np.ndarray) -> Path:
    """The cached INT8 quantization of `spec`'s ONNX export, calibrated on `calibration` (network input) and
    checked on it: mean |INT8 - torch eager| within `int8_tolerance` of the output scale, which refuses the
    models that do not survive quantization (flow regressors). The key holds the calibration data's hash."""
    directory, key = _entry(spec, "onnx", "int8", quantizer=_version("onnxruntime"),
                            calibration_sha256=hashlib.sha256(np.ascontiguousarray(calibration)).hexdigest())
    if not (directory / "meta.json").exists():
        source = onnx_file(spec)

        def build(tmp: Path) -> dict[str, Any]:
            from .quantize import quantize_int8

            start = time.perf_counter()
            quantize_int8(source, tmp / "model.onnx", calibration)
            check = _versus_torch(spec, spec.load_model(), tmp / "model.onnx", calibration)
            mean, scale = check["mean_abs_diff_vs_torch"], check["output_scale"]
            if not mean <= spec.int8_tolerance * max(scale, 1e-12):
                raise ExportError(f"INT8 quantization of '{spec.name}' ({spec.tag}) differs from torch eager by "
                                  f"{mean:.3g} on average (output scale {scale:.3g}; tolerance "
                                  f"{spec.int8_tolerance:g} of that) on its calibration frames; use precision: auto")
            return {**key, **check, "tolerance_mean": spec.int8_tolerance, "calibration_input": list(calibration.shape),
                    "export_seconds": round(time.perf_counter() - start, 3)}

        _build_once(directory, build)
    return directory / "model.onnx"


def engine_entry(spec: ExportSpec, gpu: GpuIdentity, precision: str = "fp16",
                 max_batch: int = 16) -> tuple[Path, dict[str, Any]]:
    """Where the TensorRT engine of `spec` for `gpu` (batch 1..max_batch) is cached, and the key naming it.
    Builds nothing and asks no GPU: an engine runs only on the GPU model it was built for, so `gpu` (from
    `current_gpu`) is part of the key, as are the TensorRT version and the batch range."""
    return _entry(spec, "tensorrt", precision, gpu=gpu.name, compute_capability=list(gpu.compute_capability),
                  max_batch=max_batch)


def engine_file(spec: ExportSpec, gpu: GpuIdentity, precision: str = "fp16", max_batch: int = 16) -> Path:
    """The cached TensorRT engine of `spec` for `gpu` (batch 1..max_batch), built if missing."""
    directory, key = engine_entry(spec, gpu, precision, max_batch)
    if not (directory / "meta.json").exists():
        from .tensorrt_build import build_engine

        source = onnx_file(spec)

        def build(tmp: Path) -> dict[str, Any]:
            build_engine(source, tmp / "model.plan", spec.input_hw, precision, max_batch)
            return key

        _build_once(directory, build)
    return directory / "model.plan"
