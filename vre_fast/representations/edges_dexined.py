"""DexiNed edges (the edge expert of the original VRE): edge strength per pixel in [0, 1].

Runs at 512x512 like VRE. `output: fused` (default) is the sigmoid of the network's fused map (edges
high, like HED); `output: vre` reproduces what VRE 1.18 stores: the mean over the 7 sigmoid maps of
1 - (s - min) * (max - min) (edges low). Weights: the official DexiNed state dict (BSDS/BIPED, MIT) from
`weights: PATH` or ~/.cache/vre-fast/dexined.pth, loaded with weights_only=True; none is published in a
package registry. Stored as uint8 (x255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ..representation import ComputeBatch
from ._learned import LearnedParams, UnitIntervalMap

_VRE_MEAN = (103.939, 116.779, 123.68)  # subtracted from RGB as VRE does


@dataclass(frozen=True)
class DexiNedParams(LearnedParams):
    variant: str = "biped"
    output: Literal["fused", "vre"] = "fused"


@register_representation("edges_dexined")
class EdgesDexiNed(UnitIntervalMap):
    Params = DexiNedParams
    onnx_tolerance = 1e-4
    default_cfgs = {
        "biped": PretrainedCfg(tag="edges_dexined.biped", filename="dexined.pth", input_size=(512, 512),
                               mean=_VRE_MEAN, how_to_get="the official DexiNed checkpoint (10_model.pth)",
                               license="MIT", source="DexiNed, trained on BIPED"),
        "random": PretrainedCfg(tag="edges_dexined.random", input_size=(512, 512), mean=_VRE_MEAN,
                                source="random initialisation of the same architecture (tests, benchmarks)"),
    }

    def build_model(self) -> Any:
        from ..models.dexined import DexiNed

        return DexiNed()

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        logits = outputs[0]  # (B, 7, h, w): six side outputs and the fused map
        s = 1 / (1 + np.exp(-logits.astype(np.float64)))
        if self.params.output == "fused":
            return s[:, -1].astype(np.float32)
        lo, hi = s.min(axis=(2, 3), keepdims=True), s.max(axis=(2, 3), keepdims=True)
        return (1 - (s - lo) * (hi - lo)).mean(axis=1).astype(np.float32)
