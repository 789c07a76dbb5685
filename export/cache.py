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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._cfg import stable_hash
from .._pretrained import cache_dir, file_sha256, resolve_weights
from ..errors import VreError
from ..representation import ComputeBatch
from ..sources.synthetic import drifting_texture
from .onnx_export import export_onnx, max_abs_diff

if TYPE_CHECKING:
    from ..representations._learned import LearnedRepresentation

__all__ = ["engine_file", "export_all", "onnx_file"]

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


def _entry(rep: LearnedRepresentation, input_hw: tuple[int, int], kind: str, precision: str) -> tuple[Path, dict]:
    key = {"definition": rep.definition(), "weights_sha256": _weights_hash(rep), "input_hw": list(input_hw),
           "kind": kind, "precision": precision, "opset": OPSET, "torch": _version("torch"),
           "tool": _version("onnx") if kind == "onnx" else _version("tensorrt")}
    return cache_dir() / "engines" / f"{rep.type_name}-{stable_hash(key)}", key


def _sample_input(rep: LearnedRepresentation, input_hw: tuple[int, int]) -> np.ndarray:
    """Real-looking frames (a textured scene moving 8 px a frame) through the representation's own input."""
    frames = np.stack(list(drifting_texture(VALIDATION_BATCH + 1, *input_hw, step=8, seed=1)))
    batch = ComputeBatch(list(range(VALIDATION_BATCH)), frames[:-1], frames[1:], {})
    return rep.network_input(batch)


def onnx_file(rep: LearnedRepresentation, input_hw: tuple[int, int]) -> Path:
    """The cached ONNX export of `rep` for `input_hw` (dynamic batch), exported and validated if missing."""
    directory, key = _entry(rep, input_hw, "onnx", "fp32")
    if (directory / "meta.json").exists():
        return directory / "model.onnx"
    import torch

    start = time.perf_counter()
    model = rep.load_model()
    sample = _sample_input(rep, input_hw)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    try:
        with warnings.catch_warnings():  # tracer warnings about shape-dependent Python branches
            warnings.simplefilter("ignore")
            outputs = export_onnx(model, sample, tmp / "model.onnx", OPSET)
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: sample})
        with torch.inference_mode():
            ref = model(torch.from_numpy(sample))
        ref = ref if isinstance(ref, (tuple, list)) else (ref,)
        diff = max(max_abs_diff(g, r.numpy()) for g, r in zip(got, ref))
        scale = rep.output_range or max(float(np.abs(r.numpy()).max()) for r in ref)
        if not diff <= rep.onnx_tolerance * max(scale, 1e-12):
            raise VreError(f"ONNX export of '{rep.name}' ({rep.pretrained_cfg.tag}) differs from torch eager by "
                           f"{diff:.3g} (output scale {scale:.3g}; tolerance {rep.onnx_tolerance:g} of that) on "
                           f"the validation frames; not cached")
        meta = {**key, "outputs": outputs, "max_abs_diff_vs_torch": diff, "output_scale": scale,
                "tolerance": rep.onnx_tolerance,
                "validation_input": list(sample.shape), "export_seconds": round(time.perf_counter() - start, 3)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(tmp, directory)
        except OSError:  # another process cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("%s: exported %s to %s (max |ORT - torch| = %.2g)", rep.name, rep.pretrained_cfg.tag, directory,
                diff)
    return directory / "model.onnx"


def engine_file(rep: LearnedRepresentation, input_hw: tuple[int, int], precision: str = "fp16",
                max_batch: int = 16) -> Path:
    """The cached TensorRT engine of `rep` for `input_hw` (batch 1..max_batch), built if missing."""
    directory, key = _entry(rep, input_hw, "tensorrt", precision)
    if (directory / "meta.json").exists():
        return directory / "model.plan"
    from .tensorrt_build import build_engine

    source = onnx_file(rep, input_hw)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    try:
        build_engine(source, tmp / "model.plan", input_hw, precision, max_batch)
        (tmp / "meta.json").write_text(json.dumps({**key, "max_batch": max_batch}, indent=1, default=str))
        try:
            os.rename(tmp, directory)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory / "model.plan"


def export_all(reps: list[tuple[LearnedRepresentation, str]], frame_hw: tuple[int, int]) -> list[dict[str, Any]]:
    """ONNX for every (representation, device); a TensorRT FP16 engine too where TensorRT and a GPU exist."""
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
        report.append(row)
    return report
