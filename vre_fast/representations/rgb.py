"""The decoded video frame itself."""

from __future__ import annotations

import numpy as np

from .._registry import register_representation
from ..representation import ComputeBatch, Representation


@register_representation("rgb")
class RGB(Representation):
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.frames

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return decoded
