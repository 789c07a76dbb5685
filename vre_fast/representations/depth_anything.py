"""Depth-Anything V2 (transformers' DepthAnythingForDepthEstimation): relative inverse depth per pixel.

The real-time default depth expert (see _transformers for weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._registry import register_representation
from ._learned import LearnedParams
from ._transformers import TransformersDepth, hf_cfg

_STAGES = ["stage1", "stage2", "stage3", "stage4"]


@dataclass(frozen=True)
class DepthAnythingParams(LearnedParams):
    variant: str = "small"


@register_representation("depth_anything")
class DepthAnything(TransformersDepth):
    Params = DepthAnythingParams
    default_cfgs = {
        "small": hf_cfg("depth_anything.v2_small", "depth-anything/Depth-Anything-V2-Small-hf", 518,
                        license="Apache-2.0"),
        "base": hf_cfg("depth_anything.v2_base", "depth-anything/Depth-Anything-V2-Base-hf", 518,
                       license="CC-BY-NC-4.0"),
        "small_random": hf_cfg("depth_anything.v2_small_random", None, 518,
                               source="V2-Small's architecture, randomly initialised (speed benchmarks)"),
        "test": hf_cfg("depth_anything.test", None, 56,
                       source="a tiny random configuration of the same architecture (tests)"),
    }
    random_configs = {
        # V2-Small: DINOv2-S/14 (384 wide, 12 layers, 6 heads), DPT head fed by layers 3, 6, 9, 12
        "small_random": {"backbone_config": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
                                             "intermediate_size": 1536, "patch_size": 14, "image_size": 518,
                                             "out_features": ["stage3", "stage6", "stage9", "stage12"],
                                             "reshape_hidden_states": False},
                         "neck_hidden_sizes": [48, 96, 192, 384], "fusion_hidden_size": 64, "head_hidden_size": 32,
                         "reassemble_hidden_size": 384},
        # initializer_range 0.2: with the default 0.02 a 4-layer random model outputs ~1e-7 everywhere
        "test": {"backbone_config": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                                     "intermediate_size": 64, "patch_size": 14, "image_size": 56,
                                     "out_features": _STAGES, "reshape_hidden_states": False,
                                     "initializer_range": 0.2},
                 "neck_hidden_sizes": [8, 16, 32, 64], "fusion_hidden_size": 16, "head_hidden_size": 8,
                 "reassemble_hidden_size": 32, "initializer_range": 0.2},
    }

    def make_config(self, **kwargs: Any) -> Any:
        from transformers import DepthAnythingConfig, Dinov2Config

        return DepthAnythingConfig(**{**kwargs, "backbone_config": Dinov2Config(**kwargs["backbone_config"])})

    def model_class(self) -> Any:
        from transformers import DepthAnythingForDepthEstimation

        return DepthAnythingForDepthEstimation
