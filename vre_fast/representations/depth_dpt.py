"""DPT (transformers' DPTForDepthEstimation, MiDaS 3.0): relative inverse depth per pixel.

See _transformers for weights. VRE 1.18.6's `depth/dpt` is DPT-Large (`large_384`: its DPTDepthModel with the
vitl16_384 backbone) and stores clip(1 / prediction, 0, 1), a bounded depth: `output: vre` stores that
(what its normals are computed from), `output: inverse` (the default) the network's inverse depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._registry import register_representation
from ._learned import LearnedParams
from ._transformers import TransformersDepth, hf_cfg

_HALF = (127.5, 127.5, 127.5)  # DPT normalises to [-1, 1]


@dataclass(frozen=True)
class DptParams(LearnedParams):
    variant: str = "hybrid_384"
    output: Literal["inverse", "vre"] = "inverse"


@register_representation("depth_dpt")
class DepthDpt(TransformersDepth):
    Params = DptParams
    default_cfgs = {
        "hybrid_384": hf_cfg("depth_dpt.hybrid_384", "Intel/dpt-hybrid-midas", 384, _HALF, _HALF, license="MIT"),
        "large_384": hf_cfg("depth_dpt.large_384", "Intel/dpt-large", 384, _HALF, _HALF, license="MIT"),
        "large_384_random": hf_cfg("depth_dpt.large_384_random", None, 384, _HALF, _HALF,
                                   source="DPT-Large's architecture, randomly initialised (speed benchmarks)"),
        "test": hf_cfg("depth_dpt.test", None, 64, _HALF, _HALF,
                       source="a tiny random configuration of the same architecture (tests)"),
    }
    random_configs = {
        "large_384_random": {},  # DPTConfig's defaults are DPT-Large: ViT-L/16 at 384, 24 layers
        "test": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64,
                 "image_size": 64, "patch_size": 16, "backbone_out_indices": [0, 1, 2, 3],
                 "neck_hidden_sizes": [8, 16, 32, 64], "fusion_hidden_size": 16, "head_in_index": -1,
                 "initializer_range": 0.2, "is_hybrid": False},
    }

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: Any) -> np.ndarray:
        inverse = super().postprocess(outputs, batch)
        if self.params.output == "inverse":
            return inverse
        with np.errstate(divide="ignore"):
            return np.clip(1 / inverse, 0, 1)  # VRE's DepthDpt._postprocess; 1 / 0 = inf -> 1, as in torch

    def definition(self) -> dict[str, Any]:
        """Without `output` when it is the default, so definitions recorded before it existed stay equal."""
        definition = super().definition()
        if self.params.output == "inverse":
            del definition["parameters"]["output"]
        return definition

    def make_config(self, **kwargs: Any) -> Any:
        from transformers import DPTConfig

        return DPTConfig(**kwargs)

    def model_class(self) -> Any:
        from transformers import DPTForDepthEstimation

        return DPTForDepthEstimation
