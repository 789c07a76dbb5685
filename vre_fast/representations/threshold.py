"""A {0, 1} mask of where a single-channel map is at most (or at least) a value, e.g. near depth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch, Input, Representation


@dataclass(frozen=True)
class ThresholdParams:
    value: float
    keep: Literal["below", "above"] = "below"  # below: x <= value; above: x >= value (NaN: never)


@register_representation("threshold")
class Threshold(Representation):
    Params = ThresholdParams
    inputs = (Input("map"),)
    interpolation = "nearest"
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        x = batch.inputs["map"]
        x = x.reshape(x.shape[:3]) if x.ndim == 4 and x.shape[-1] == 1 else x
        if x.ndim != 3:
            raise ValueError(f"expected a single-channel map, got shape {x.shape[1:]}")
        kept = x <= self.params.value if self.params.keep == "below" else x >= self.params.value
        return kept.astype(np.uint8)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
