"""MediaPipe selfie segmentation (Apache-2.0): the probability that a pixel is a person, in real time.

The 250 KB TFLite models ship inside PyPI `mediapipe` (install it with --no-deps: vre-fast only reads the
file); `models/tflite_graph.py` turns the graph into a torch module (float16 weights dequantised), which
the usual backends run and export to ONNX. `general` runs at 256x256, `landscape` at 144x256. Checked
against MediaPipe's own pipeline by `bench/selfie_vs_mediapipe.py`. Stored as uint8 (x255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from .._registry import register_representation
from ..representation import ComputeBatch
from ._learned import LearnedParams, UnitIntervalMap

_UNIT = (255.0, 255.0, 255.0)  # RGB in [0, 1]


def _cfg(name: str, filename: str, size: tuple[int, int]) -> PretrainedCfg:
    return PretrainedCfg(tag=f"segmentation_selfie.{name}", filename=filename, input_size=size, std=_UNIT,
                         package_file=("mediapipe", f"modules/selfie_segmentation/{filename}"),
                         how_to_get="pip install --no-deps mediapipe==0.10.21", license="Apache-2.0",
                         source="PyPI mediapipe 0.10.21")


@dataclass(frozen=True)
class SelfieParams(LearnedParams):
    variant: str = "general"


@register_representation("segmentation_selfie")
class SegmentationSelfie(UnitIntervalMap):
    Params = SelfieParams
    onnx_tolerance = 1e-4
    default_cfgs = {"general": _cfg("general", "selfie_segmentation.tflite", (256, 256)),
                    "landscape": _cfg("landscape", "selfie_segmentation_landscape.tflite", (144, 256))}

    def load_model(self) -> Any:
        """The network is the TFLite file itself: read it into a torch module."""
        from ..models.tflite_graph import TFLiteGraph

        path = resolve_weights(self.pretrained_cfg, self.params.weights, f"representations.{self.name}.parameters")
        graph = TFLiteGraph(path)
        if graph.input_shape[1:3] != self.pretrained_cfg.input_size:
            raise ValueError(f"{path} takes {graph.input_shape[1:3]} inputs, not {self.pretrained_cfg.input_size}: "
                             f"is it the {self.params.variant} model?")
        return graph.eval()

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        return outputs[0][:, 0]
