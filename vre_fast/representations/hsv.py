"""HSV colour space, every channel in [0, 1] (VRE's definition), stored as float16."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.hsv import rgb_to_hsv
from ..representation import ComputeBatch, Representation, kernel_backend


@register_representation("hsv")
class HSV(Representation):
    compute_backends = ("cpu", "cuda")

    def setup(self, device: str) -> None:
        """Loads the compiled kernel (numba's cache, or the CUDA module) on a 2x2 frame, so that its first
        call (about half a second) is counted as set-up, not as compute time."""
        rgb_to_hsv(np.zeros((1, 2, 2, 3), np.uint8), kernel_backend(device), self.storage_dtype)

    def compute(self, batch: ComputeBatch) -> Any:
        return rgb_to_hsv(batch.frames, dtype=self.storage_dtype)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)

    def make_image_of_stored(self, stored: np.ndarray) -> np.ndarray:
        """unit_to_image draws float16 directly (a lookup), equal to drawing its float32 widening."""
        return colormaps.unit_to_image(stored)
