"""Dense optical flow from frame t to t+1 with OpenCV (DIS or Farneback).

Stored as float32 (B, H, W, 2) in fractions of the image width and height, so it stays valid
when resized to another output size (multiply by W, H for pixels). The last frame of the
video has no successor and gets zero flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch, Representation

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


@dataclass(frozen=True)
class FlowParams:
    method: Literal["dis", "farneback"] = "dis"
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"
    # Farneback only
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


@register_representation("optical_flow_classical")
class OpticalFlowClassical(Representation):
    Params = FlowParams
    needs_next_frame = True
    output_kind = "flow"
    storage_dtype = np.float32

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        assert batch.next_frames is not None
        out = np.empty((*batch.frames.shape[:3], 2), np.float32)
        for i, (a, b) in enumerate(zip(batch.frames, batch.next_frames)):
            out[i] = self._flow(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY))
        h, w = out.shape[1:3]
        return out / np.array([w, h], np.float32)

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        p = self.params
        if p.method == "dis":
            return cv2.DISOpticalFlow_create(_DIS_PRESETS[p.dis_preset]).calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, p.pyr_scale, p.levels, p.winsize, p.iterations,
                                            p.poly_n, p.poly_sigma, 0)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.flow_to_image(decoded)
