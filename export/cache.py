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
from typing import TYPE_CHECKING, Any

import numpy as np

from .._cfg import stable_hash
from .._pretrained import cache_dir, file_sha256, resolve_weights
from ..errors import VreError
from ..representation import ComputeBatch, sample_batch
from ..sources.synthetic import drifting_texture
from .onnx_export import export_onnx, max_abs_diff

if TYPE_CHECKING:
    from ..representations._learned import LearnedRepresentation

__all__ = ["engine_file", "export_all", "int8_onnx_file", "onnx_file"]

logger = logging.getLogger("vre_fast")
OPSET = 18
VALIDATION_BATCH = 2


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _weights_hash(rep: LearnedRepresentation) -> str:
    """The weight file's SHA-256; for random variants, a hash of the (seeded) parameters themselves."""
    cfg = rep.pretrained_cfg
    if cfg.has_weights:
        return file_sha256(resolve_weights(cfg, rep.params.weights, f"representations.{rep.name}.parameters"))
    digest = hashlib.sha256()
    for name, tensor in rep.load_model().state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _entry(rep: LearnedRepresentation, input_hw: tuple[int, int], kind: str, precision: str,
           **extra: str) -> tuple[Path, dict]:
    """The cache directory and key of one build; `extra` adds what else shapes it (an INT8 calibration)."""
    definition = rep.definition()  # precision and calibration are the key's own fields
    definition["parameters"] = {k: v for k, v in definition["parameters"].items()
                                if k not in ("precision", "calibration")}
    key = {"definition": definition, "weights_sha256": _weights_hash(rep), "input_hw": list(input_hw),
           "kind": kind, "precision": precision, "opset": OPSET, "torch": _version("torch"),
           "tool": _version("onnx") if kind == "onnx" else _version("tensorrt"), **extra}
    return cache_dir() / "engines" / f"{rep.type_name}-{stable_hash(key)}", key


def _sample_input(rep: LearnedRepresentation, input_hw: tuple[int, int]) -> np.ndarray:
    """Real-looking frames (a textured scene moving 8 px a frame) through the representation's own input."""
    frames = np.stack(list(drifting_texture(VALIDATION_BATCH + 1, *input_hw, step=8, seed=1)))
    batch = ComputeBatch(list(range(VALIDATION_BATCH)), frames[:-1], frames[1:], {})
    return rep.network_input(batch)


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


def _versus_torch(rep: LearnedRepresentation, model: Any, onnx_path: Path, sample: np.ndarray) -> dict[str, float]:
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
            "output_scale": rep.output_range or max(float(np.abs(r).max()) for r in ref)}


def onnx_file(rep: LearnedRepresentation, input_hw: tuple[int, int]) -> Path:
    """The cached ONNX export of `rep` for `input_hw` (dynamic batch), exported and validated if missing."""
    directory, key = _entry(rep, input_hw, "onnx", "fp32")
    if not (directory / "meta.json").exists():
        def build(tmp: Path) -> dict[str, Any]:
            start = time.perf_counter()
            model = rep.load_model()
            sample = _sample_input(rep, input_hw)
            with warnings.catch_warnings():  # tracer warnings about shape-dependent Python branches
                warnings.simplefilter("ignore")
                outputs = export_onnx(model, sample, tmp / "model.onnx", OPSET)
            check = _versus_torch(rep, model, tmp / "model.onnx", sample)
            diff, scale = check["max_abs_diff_vs_torch"], check["output_scale"]
            if not diff <= rep.onnx_tolerance * max(scale, 1e-12):
                raise VreError(f"ONNX export of '{rep.name}' ({rep.pretrained_cfg.tag}) differs from torch eager by "
                               f"{diff:.3g} (output scale {scale:.3g}; tolerance {rep.onnx_tolerance:g} of that) on "
                               f"the validation frames; not cached")
            logger.info("%s: exported %s to %s (max |ORT - torch| = %.2g)", rep.name, rep.pretrained_cfg.tag,
                        directory, diff)
            return {**key, **check, "outputs": outputs, "tolerance": rep.onnx_tolerance,
                    "validation_input": list(sample.shape), "export_seconds": round(time.perf_counter() - start, 3)}

        _build_once(directory, build)
    return directory / "model.onnx"


def int8_onnx_file(rep: LearnedRepresentation, input_hw: tuple[int, int], calibration: np.ndarray) -> Path:
    """The cached INT8 quantization of `rep`'s ONNX export, calibrated on `calibration` (network input) and
    checked on it: mean |INT8 - torch eager| within `int8_tolerance` of the output scale, which refuses the
    models that do not survive quantization (flow regressors). The key holds the calibration data's hash."""
    directory, key = _entry(rep, input_hw, "onnx", "int8", quantizer=_version("onnxruntime"),
                            calibration_sha256=hashlib.sha256(np.ascontiguousarray(calibration)).hexdigest())
    if not (directory / "meta.json").exists():
        source = onnx_file(rep, input_hw)

        def build(tmp: Path) -> dict[str, Any]:
            from .quantize import quantize_int8

            start = time.perf_counter()
            quantize_int8(source, tmp / "model.onnx", calibration)
            check = _versus_torch(rep, rep.load_model(), tmp / "model.onnx", calibration)
            mean, scale = check["mean_abs_diff_vs_torch"], check["output_scale"]
            if not mean <= rep.int8_tolerance * max(scale, 1e-12):
                raise VreError(f"INT8 quantization of '{rep.name}' ({rep.pretrained_cfg.tag}) differs from torch "
                               f"eager by {mean:.3g} on average (output scale {scale:.3g}; tolerance "
                               f"{rep.int8_tolerance:g} of that) on its calibration frames; use precision: auto")
            return {**key, **check, "tolerance_mean": rep.int8_tolerance, "calibration_input": list(calibration.shape),
                    "export_seconds": round(time.perf_counter() - start, 3)}

        _build_once(directory, build)
    return directory / "model.onnx"


def engine_file(rep: LearnedRepresentation, input_hw: tuple[int, int], precision: str = "fp16",
                max_batch: int = 16) -> Path:
    """The cached TensorRT engine of `rep` for `input_hw` (batch 1..max_batch), built if missing."""
    directory, key = _entry(rep, input_hw, "tensorrt", precision)
    if not (directory / "meta.json").exists():
        from .tensorrt_build import build_engine

        source = onnx_file(rep, input_hw)

        def build(tmp: Path) -> dict[str, Any]:
            build_engine(source, tmp / "model.plan", input_hw, precision, max_batch)
            return {**key, "max_batch": max_batch}

        _build_once(directory, build)
    return directory / "model.plan"


def export_all(reps: list[tuple[LearnedRepresentation, str]], frame_hw: tuple[int, int]) -> list[dict[str, Any]]:
    """ONNX for every (representation, device); a TensorRT FP16 engine too where TensorRT and a GPU exist; the
    INT8 ONNX of representations with `precision: int8` and a `calibration` video."""
    from ..backends import available_backends

    report = []
    for rep, device in reps:
        input_hw = rep.input_size(frame_hw)
        path = onnx_file(rep, input_hw)
        meta = json.loads((path.parent / "meta.json").read_text())
        row = {"name": rep.name, "variant": rep.pretrained_cfg.tag, "input_hw": input_hw, "onnx": str(path),
               "max_abs_diff_vs_torch": meta["max_abs_diff_vs_torch"], "output_scale": meta["output_scale"],
               "tolerance": meta["tolerance"]}
        if "tensorrt" in available_backends(device):
            row["tensorrt_fp16"] = str(engine_file(rep, input_hw))
        else:
            row["tensorrt_fp16"] = "skipped: TensorRT or a CUDA device is not available"
        if rep.params.precision == "int8" and rep.params.calibration is None:
            row["int8"] = "skipped: calibrated on the first frames of the video a run reads (or: calibration)"
        elif rep.params.precision == "int8":
            size_only = sample_batch(np.zeros((1, *frame_hw, 3), np.uint8))  # frames come from the calibration video
            path = int8_onnx_file(rep, input_hw, rep.calibration_input(size_only))
            meta = json.loads((path.parent / "meta.json").read_text())
            row["int8"] = (f"{path} (mean |INT8 - torch| {meta['mean_abs_diff_vs_torch']:.2g}, max "
                           f"{meta['max_abs_diff_vs_torch']:.2g}; tolerance on the mean {meta['tolerance_mean']:g} "
                           f"of the output scale)")
        report.append(row)
    return report
