"""A {0, 1} mask of the pixels whose class is one of `classes` (e.g. vegetation, water, buildings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels._cuda import to_host
from ..kernels.lookup import apply_lut
from ..representation import ComputeBatch, Input, Representation, kernel_backend
from ._classes import class_table, resolve_class_ids, table_size


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

    def bind(self) -> None:
        self._ids = resolve_class_ids(self.params.classes, self.dependencies["semantic"])

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        classes = batch.inputs["semantic"]
        classes = classes.reshape(classes.shape[:3])
        return to_host(apply_lut(classes, class_table(self._ids, table_size(classes)), kernel_backend(batch.device)))

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
