"""Optical flow from RAFT (all-pairs correlation + recurrent updates): frame t -> t + delta (`delta` and
`compute_backward_flow`: see _flow).

The flow expert of the original VRE. Weights: torchvision's released checkpoints (BSD-3-Clause), found
offline in the vre-fast cache or torch hub's cache (where torchvision put them if it downloaded them).
The network runs at the frame size rounded to a multiple of 8, and at least 128 px a side.
`iterations` is the number of recurrent refinements (torchvision's default 12; more is slower and a
little more accurate on large motions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ._flow import FlowParams, LearnedFlow

_TORCHVISION = "https://download.pytorch.org/models/"
_PIXELS_TO_UNIT = {"multiple_of": 8, "mean": (127.5,) * 3, "std": (127.5,) * 3}  # [0, 255] -> [-1, 1]


def _cfg(variant: str, filename: str | None, source: str) -> PretrainedCfg:
    hub = {"filename": filename, "sha256": filename.split("-")[-1].split(".")[0], "license": "BSD-3-Clause",
           "how_to_get": f"download {_TORCHVISION}{filename}"} if filename else {}
    return PretrainedCfg(tag=f"optical_flow_raft.{variant}", source=source, **hub, **_PIXELS_TO_UNIT)


@dataclass(frozen=True)
class RaftParams(FlowParams):
    variant: str = "large"
    iterations: int = 12


@register_representation("optical_flow_raft")
class OpticalFlowRaft(LearnedFlow):
    Params = RaftParams
    onnx_tolerance = 1e-4
    default_cfgs = {
        "large": _cfg("large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                      "torchvision Raft_Large_Weights.C_T_SKHT_V2 (Chairs, Things, Sintel, KITTI, HD1K)"),
        "small": _cfg("small", "raft_small_C_T_V2-01064c6d.pth",
                      "torchvision Raft_Small_Weights.C_T_V2 (Chairs, Things)"),
        "large_random": _cfg("large_random", None, "RAFT-large, randomly initialised (tests, benchmarks)"),
        "small_random": _cfg("small_random", None, "RAFT-small, randomly initialised (tests, benchmarks)"),
    }

    def validate(self) -> None:
        super().validate()
        if self.params.iterations < 1:
            raise ValueError(f"parameters.iterations: must be at least 1, got {self.params.iterations}")

    def _config(self) -> Any:
        from ..models.raft import LARGE, SMALL

        return LARGE if self.params.variant.startswith("large") else SMALL

    def build_model(self) -> Any:
        from ..models.raft import RAFT

        return RAFT(self._config(), self.params.iterations)

    def load_weights(self, model: Any, path: Path) -> None:
        from ..models.raft import load_raft_checkpoint

        load_raft_checkpoint(model, path)

    def input_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        smallest = self._config().min_size
        return tuple(max(side, smallest) for side in super().input_size(frame_hw))  # type: ignore[return-value]

    def pixel_flow(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        return outputs[0]
