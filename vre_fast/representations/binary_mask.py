"""A {0, 1} mask of the pixels whose class is one of `classes` (e.g. vegetation, water, buildings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch, Input, Representation
from ._classes import membership, resolve_class_ids


@dataclass(frozen=True)
class BinaryMaskParams:
    classes: tuple[int | str, ...]

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("classes must list at least one class id or name")


@register_representation("binary_mask")
class BinaryMask(Representation):
    Params = BinaryMaskParams
    inputs = (Input("semantic"),)
    interpolation = "nearest"
    storage_dtype = np.uint8

    def validate_dependencies(self) -> None:
        self._ids = resolve_class_ids(self.params.classes, self.dependencies["semantic"])

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return membership(batch.inputs["semantic"], self._ids).astype(np.uint8)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
