"""LearnedRepresentation: an expert with weights, run by a backend (torch, ONNX Runtime, TensorRT).

A learned file declares `default_cfgs` (one PretrainedCfg per variant), builds its architecture in
`build_model` (random initialisation), reads weights in `load_weights`, and maps frames to network
input (`model_input`) and network output back to a map (`postprocess`). Weights load in `prepare`,
which the runtime calls (after `setup`) only when the node has frames to compute.

The ONNX and TensorRT backends run what `export/` builds from the expert's `export_spec`; export's
refusals (`ExportError`) reach the user as VreError, like every other error of their input.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from .._pretrained import PretrainedCfg, cache_dir, file_sha256, resolve_weights
from ..backends import available_backends, make_runner
from ..errors import VreError
from ..export import ExportError, ExportSpec, current_gpu, engine_file, int8_onnx_file, onnx_file
from ..kernels import colormaps
from ..representation import SAMPLE_FRAMES, ComputeBatch, Representation, sample_batch

__all__ = ["LearnedParams", "LearnedRepresentation", "UnitIntervalMap"]

logger = logging.getLogger("vre_fast")
VALIDATION_FRAMES = 2  # how many frames an export is checked against torch eager on


@contextlib.contextmanager
def _export_errors_as_vre_errors() -> Iterator[None]:
    """Export's refusals as VreError, which the CLI prints as one message and a run reports as a set-up
    failure; `export/` cannot raise VreError itself, since it imports nothing of the runtime."""
    try:
        yield
    except ExportError as exc:
        raise VreError(str(exc)) from exc


@dataclass(frozen=True)
class LearnedParams:
    """Every expert's parameters; an expert subclasses it to set its default `variant`."""

    variant: str
    weights: str | None = None  # a weight file; default: the variant's usual offline places
    backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = "auto"
    # auto: float32 on torch and ONNX Runtime, float16 on TensorRT; int8: a quantized ONNX on ONNX Runtime
    precision: Literal["auto", "int8"] = "auto"
    calibration: str | None = None  # int8: a video whose first frames calibrate it; default: the run's video


class LearnedRepresentation(Representation):
    """An expert; its `Params` subclass LearnedParams."""

    default_cfgs: ClassVar[dict[str, PretrainedCfg]] = {}
    # max |ONNX Runtime - torch| accepted when an export is validated, as a fraction of `output_range`
    # (the outputs' known range) or, when that is None, of the largest output on the validation frames
    onnx_tolerance: ClassVar[float] = 1e-4
    output_range: ClassVar[float | None] = None
    int8_tolerance: ClassVar[float] = 0.02  # mean |INT8 - torch| accepted, as a fraction of the same scale
    # parameters that change only what `postprocess` makes of the network's output: left out of the export
    # cache key, so that they share one exported network
    postprocess_params: ClassVar[tuple[str, ...]] = ()
    later_parameters: ClassVar[dict[str, Any]] = {"precision": "auto", "calibration": None}  # the INT8 ones

    def validate(self) -> None:
        if self.params.variant not in self.default_cfgs:
            raise ValueError(f"parameters.variant: unknown '{self.params.variant}' for '{self.type_name}'; "
                             f"known: {sorted(self.default_cfgs)}")
        if self.params.precision == "int8" and self.params.backend not in ("auto", "onnxruntime"):
            raise ValueError(f"parameters.precision: int8 runs on the onnxruntime backend, not "
                             f"'{self.params.backend}'")
        if self.params.calibration is not None and self.params.precision != "int8":
            raise ValueError("parameters.calibration: only an int8 expert is calibrated (precision: int8)")

    def bind(self) -> None:
        """No backend yet: `setup` records the device and `prepare` builds the runner for the input's size."""
        self._runner: Any = None
        self._device = "cpu"

    @property
    def pretrained_cfg(self) -> PretrainedCfg:
        return self.default_cfgs[self.params.variant]

    # -- to override ---------------------------------------------------------------------------------
    def build_model(self) -> Any:
        """The architecture as a torch.nn.Module, randomly initialised."""
        raise NotImplementedError

    def load_weights(self, model: Any, path: Path) -> None:
        """Default: a safetensors file, else a torch state dict loaded with weights_only=True."""
        import torch

        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------------
    def input_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        cfg = self.pretrained_cfg
        if cfg.input_size is not None:
            return cfg.input_size
        m = cfg.multiple_of
        return max(m, round(frame_hw[0] / m) * m), max(m, round(frame_hw[1] / m) * m)

    def model_input(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB -> (B, 3, h, w) float32, resized and normalised per the cfg."""
        h, w = self.input_size(frames.shape[1:3])
        cfg = self.pretrained_cfg
        mean, std = np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)
        out = np.empty((len(frames), 3, h, w), np.float32)
        for i, f in enumerate(frames):
            f = f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            out[i] = ((f.astype(np.float32) - mean) / std).transpose(2, 0, 1)
        return out

    def load_model(self) -> Any:
        """The model with its weights; variants without weights get a fixed seed, so every backend and
        every process builds the same random model."""
        import torch

        cfg = self.pretrained_cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = self.build_model()
        if cfg.has_weights:
            path = resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters")
            logger.info("%s: loading %s weights from %s", self.name, cfg.tag, path)
            self.load_weights(model, path)
        return model.eval()

    def setup(self, device: str) -> None:
        """Records the device; the backend and the weights load in `prepare`, once the input (the shape
        profile of an exported engine, the calibration frames of an INT8 model) is known."""
        self._device = device

    def prepare(self, sample: ComputeBatch) -> None:
        self.runner(sample)

    def runner(self, first: ComputeBatch) -> Any:
        """The backend, built on first use for the size of `first`'s frames (the `prepare` sample, or the
        first batch when `compute` is called directly)."""
        if self._runner is None:
            input_hw = self.input_size(first.frames.shape[1:3])
            int8 = self.params.precision == "int8"

            def onnx() -> Path:
                with _export_errors_as_vre_errors():
                    spec = self.export_spec(input_hw)
                    return int8_onnx_file(spec, self.calibration_input(first)) if int8 else onnx_file(spec)

            def engine() -> Path:
                with _export_errors_as_vre_errors():
                    return engine_file(self.export_spec(input_hw), current_gpu(self._device))

            self._runner = make_runner("onnxruntime" if int8 else self.params.backend, self._device, self.load_model,
                                       onnx, engine)
            logger.info("%s: %s backend on %s", self.name, self._runner.name, self._device)
        return self._runner

    def calibration_input(self, first: ComputeBatch) -> np.ndarray:
        """What an INT8 model calibrates on: the first SAMPLE_FRAMES frames of `parameters.calibration` (then
        `run`, `stream` and `export-engines` build the same model) or else `first`."""
        if self.params.calibration is None:
            return self.network_input(first)
        from ..sources import VideoSource

        with VideoSource(self.params.calibration) as source:
            frames = source.head(SAMPLE_FRAMES + 1)
        hw = first.frames.shape[1:3]
        return self.network_input(sample_batch(np.stack([
            f if f.shape[:2] == hw else cv2.resize(f, hw[::-1], interpolation=cv2.INTER_AREA) for f in frames])))

    def export_spec(self, input_hw: tuple[int, int]) -> ExportSpec:
        """What `export/` exports, validates and caches this expert at `input_hw` from. Built when a backend
        that runs an export is chosen (`runner`) and by `export_ahead`; hashing the weights costs a read of
        the weight file (a model build for random variants), so it is built only then."""
        definition = self.definition()  # precision and calibration are the cache key's own fields
        definition["parameters"] = {k: v for k, v in definition["parameters"].items()
                                    if k not in ("precision", "calibration", *self.postprocess_params)}
        return ExportSpec(name=self.name, family=self.type_name, tag=self.pretrained_cfg.tag, definition=definition,
                          weights_sha256=self._weights_sha256(), input_hw=input_hw,
                          sample_input=lambda: self._validation_input(input_hw), load_model=self.load_model,
                          onnx_tolerance=self.onnx_tolerance, int8_tolerance=self.int8_tolerance,
                          output_range=self.output_range, cache_dir=cache_dir())

    def _weights_sha256(self) -> str:
        """The weight file's SHA-256; for random variants, a hash of the (seeded) parameters themselves."""
        cfg = self.pretrained_cfg
        if cfg.has_weights:
            return file_sha256(resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters"))
        digest = hashlib.sha256()
        for name, tensor in self.load_model().state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        return digest.hexdigest()

    def _validation_input(self, input_hw: tuple[int, int]) -> np.ndarray:
        """Real-looking frames (a textured scene moving 8 px a frame) through this expert's own input."""
        from ..sources.synthetic import drifting_texture

        frames = np.stack(list(drifting_texture(VALIDATION_FRAMES + 1, *input_hw, step=8, seed=1)))
        return self.network_input(ComputeBatch(list(range(VALIDATION_FRAMES)), frames[:-1], frames[1:], {}))

    def export_ahead(self, frame_hw: tuple[int, int], device: str) -> dict[str, Any]:
        """What `vre-fast export-engines` builds for frames of `frame_hw` on `device`, so that a run finds it
        cached: the ONNX export; a TensorRT FP16 engine where TensorRT and a GPU exist; the INT8 ONNX of an
        expert with `precision: int8` and a `calibration` video. Returns the report's row."""
        input_hw = self.input_size(frame_hw)
        with _export_errors_as_vre_errors():
            spec = self.export_spec(input_hw)
            path = onnx_file(spec)
            meta = json.loads((path.parent / "meta.json").read_text())
            row = {"name": self.name, "variant": spec.tag, "input_hw": input_hw, "onnx": str(path),
                   "max_abs_diff_vs_torch": meta["max_abs_diff_vs_torch"], "output_scale": meta["output_scale"],
                   "tolerance": meta["tolerance"]}
            if "tensorrt" in available_backends(device):
                row["tensorrt_fp16"] = str(engine_file(spec, current_gpu(device)))
            else:
                row["tensorrt_fp16"] = "skipped: TensorRT or a CUDA device is not available"
            if self.params.precision == "int8" and self.params.calibration is None:
                row["int8"] = "skipped: calibrated on the first frames of the video a run reads (or: calibration)"
            elif self.params.precision == "int8":
                size_only = sample_batch(np.zeros((1, *frame_hw, 3), np.uint8))  # frames come from the video
                path = int8_onnx_file(spec, self.calibration_input(size_only))
                meta = json.loads((path.parent / "meta.json").read_text())
                row["int8"] = (f"{path} (mean |INT8 - torch| {meta['mean_abs_diff_vs_torch']:.2g}, max "
                               f"{meta['max_abs_diff_vs_torch']:.2g}; tolerance on the mean "
                               f"{meta['tolerance_mean']:g} of the output scale)")
        return row

    def teardown(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def network_input(self, batch: ComputeBatch) -> np.ndarray:
        """What the network gets for `batch`; default: the frames through `model_input`."""
        return self.model_input(batch.frames)

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        x = self.network_input(batch)
        return self.postprocess(self.runner(batch)(x), batch)

    def definition(self) -> dict[str, Any]:
        """The backend is left out: backends agree within `onnx_tolerance`, and a run may switch."""
        definition = super().definition()
        definition["parameters"] = {k: v for k, v in definition["parameters"].items() if k != "backend"}
        return {**definition, "pretrained": self.pretrained_cfg.tag}


class UnitIntervalMap(LearnedRepresentation):
    """An expert whose output is a [0, 1] map (edge probability): stored as uint8 (x255, a 1/255 step),
    read back as float32, drawn in grey."""

    storage_dtype = np.uint8
    interpolation = "linear"
    output_range = 1.0

    def encode(self, output: np.ndarray) -> np.ndarray:
        return np.round(np.clip(output, 0, 1) * 255).astype(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return stored.astype(np.float32) / 255

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
