"""A {0, 1} mask of the pixels whose class is one of `classes` (e.g. vegetation, water, buildings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.lookup import apply_lut
from ..representation import ComputeBatch, Input, Representation
from ._classes import class_ids, class_table, resolve_class_ids, table_size


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
    compute_backends = ("cpu", "cuda")
    interpolation = "nearest"
    storage_dtype = np.uint8

    def bind(self) -> None:
        self._ids = resolve_class_ids(self.params.classes, self.dependencies["semantic"])

    def compute(self, batch: ComputeBatch) -> Any:
        classes = class_ids(batch.inputs["semantic"], self.dependencies["semantic"])
        return apply_lut(classes, class_table(self._ids, table_size(classes)))

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
