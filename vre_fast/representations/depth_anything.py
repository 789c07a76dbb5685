"""Depth-Anything (V2, transformers' DepthAnythingForDepthEstimation): relative inverse depth per pixel.

The real-time default depth expert. Weights: a HuggingFace-format folder (config.json +
model.safetensors), from `weights: PATH` or the offline HF hub cache; nothing is downloaded. Stored as
float16 (relative disparity: larger is nearer), at the video's resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedRepresentation

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class DepthAnythingParams:
    variant: str = "small"
    weights: str | None = None  # model.safetensors (its config.json beside it)
    backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = "auto"


def _cfg(tag: str, repo: str | None, size: int, **kw: Any) -> PretrainedCfg:
    return PretrainedCfg(tag=tag, filename="model.safetensors" if repo else None, hf_repo=repo,
                         input_size=(size, size), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         how_to_get=f"a copy of the HuggingFace repo {repo} in the offline hub cache" if repo else "",
                         **kw)


@register_representation("depth_anything")
class DepthAnything(LearnedRepresentation):
    Params = DepthAnythingParams
    onnx_tolerance = 1e-4
    default_cfgs = {
        "small": _cfg("depth_anything.v2_small", "depth-anything/Depth-Anything-V2-Small-hf", 518,
                      license="Apache-2.0"),
        "base": _cfg("depth_anything.v2_base", "depth-anything/Depth-Anything-V2-Base-hf", 518,
                     license="CC-BY-NC-4.0"),
        "small_random": _cfg("depth_anything.v2_small_random", None, 518,
                             source="V2-Small's architecture, randomly initialised (speed benchmarks)"),
        "test": _cfg("depth_anything.test", None, 56,
                     source="a tiny random configuration of the same architecture (tests)"),
    }

    def build_model(self) -> Any:
        from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

        cfg = self.pretrained_cfg
        if cfg.has_weights:
            from .._pretrained import resolve_weights

            path = resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters")
            config = DepthAnythingConfig.from_dict(json.loads((path.parent / "config.json").read_text()))
        else:
            backbone, head = _RANDOM_CONFIGS[self.params.variant]
            config = DepthAnythingConfig(backbone_config=Dinov2Config(**backbone), **head)
        return _PredictedDepth(DepthAnythingForDepthEstimation(config))

    def load_weights(self, model: Any, path: Path) -> None:
        from safetensors.torch import load_file

        model.net.load_state_dict(load_file(str(path)))

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        return outputs[0]

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.depth_to_image(decoded)


_STAGES = ["stage1", "stage2", "stage3", "stage4"]
# (Dinov2 backbone, DepthAnything head) of the variants without weights
_RANDOM_CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # V2-Small: DINOv2-S/14 (384 wide, 12 layers, 6 heads), DPT head fed by layers 3, 6, 9, 12
    "small_random": ({"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536,
                      "patch_size": 14, "image_size": 518, "out_features": ["stage3", "stage6", "stage9", "stage12"],
                      "reshape_hidden_states": False},
                     {"neck_hidden_sizes": [48, 96, 192, 384], "fusion_hidden_size": 64, "head_hidden_size": 32,
                      "reassemble_hidden_size": 384}),
    # initializer_range 0.2: with the default 0.02 a 4-layer random model outputs ~1e-7 everywhere
    "test": ({"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64,
              "patch_size": 14, "image_size": 56, "out_features": _STAGES, "reshape_hidden_states": False,
              "initializer_range": 0.2},
             {"neck_hidden_sizes": [8, 16, 32, 64], "fusion_hidden_size": 16, "head_hidden_size": 8,
              "reassemble_hidden_size": 32, "initializer_range": 0.2}),
}


def _PredictedDepth(net: Any) -> Any:  # noqa: N802 - a torch.nn.Module factory, built lazily
    """Wraps the transformers model so it maps a tensor to a tensor (what export and runners expect)."""
    import torch

    class PredictedDepth(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(pixel_values=x).predicted_depth

    return PredictedDepth()
