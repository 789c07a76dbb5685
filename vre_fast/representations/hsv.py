"""HSV colour space, every channel in [0, 1] (VRE's definition), stored as float16."""

from __future__ import annotations

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.hsv import hsv_opencv
from ..representation import ComputeBatch, Representation


@register_representation("hsv")
class HSV(Representation):
    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return hsv_opencv(batch.frames)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
