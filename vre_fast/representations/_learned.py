"""LearnedRepresentation: an expert with weights, run by a backend (torch, ONNX Runtime, TensorRT).

A learned file declares `default_cfgs` (one PretrainedCfg per variant), builds its architecture in
`build_model` (random initialisation), reads weights in `load_weights`, and maps frames to network
input (`model_input`) and network output back to a map (`postprocess`). Weights load in `prepare`,
which the runtime calls (after `setup`) only when the node has frames to compute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from ..backends import make_runner
from ..kernels import colormaps
from ..representation import SAMPLE_FRAMES, ComputeBatch, Representation, sample_batch

__all__ = ["LearnedParams", "LearnedRepresentation", "UnitIntervalMap"]

logger = logging.getLogger("vre_fast")


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

    def validate(self) -> None:
        if self.params.variant not in self.default_cfgs:
            raise ValueError(f"parameters.variant: unknown '{self.params.variant}' for '{self.type_name}'; "
                             f"known: {sorted(self.default_cfgs)}")
        if self.params.precision == "int8" and self.params.backend not in ("auto", "onnxruntime"):
            raise ValueError(f"parameters.precision: int8 runs on the onnxruntime backend, not "
                             f"'{self.params.backend}'")
        if self.params.calibration is not None and self.params.precision != "int8":
            raise ValueError("parameters.calibration: only an int8 expert is calibrated (precision: int8)")
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
        from ..export import engine_file, int8_onnx_file, onnx_file

        if self._runner is None:
            input_hw = self.input_size(first.frames.shape[1:3])
            int8 = self.params.precision == "int8"
            onnx = (lambda: int8_onnx_file(self, input_hw, self.calibration_input(first))) if int8 else \
                (lambda: onnx_file(self, input_hw))
            self._runner = make_runner("onnxruntime" if int8 else self.params.backend, self._device, self.load_model,
                                       onnx, lambda: engine_file(self, input_hw))
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
        """The backend is left out: backends agree within `onnx_tolerance`, and a run may switch. The INT8
        parameters appear only when used, so outputs stored before they existed still match."""
        definition = super().definition()
        unset = {("precision", "auto"), ("calibration", None)}
        definition["parameters"] = {k: v for k, v in definition["parameters"].items()
                                    if k != "backend" and (k, v) not in unset}
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
