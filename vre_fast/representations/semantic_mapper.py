"""Maps the classes of one segmentation onto another label set (e.g. Mapillary -> Dronescapes).

`mapping` is ordered: {new class name: [source class ids or names]}; the i-th key becomes
class i. Source classes mapped nowhere become 255 (ignore).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.colormaps import IGNORE_CLASS
from ..kernels.lookup import apply_lut
from ..representation import ComputeBatch, Input, Representation
from ._classes import class_ids, resolve_class_ids, table_size


@dataclass(frozen=True)
class SemanticMapperParams:
    mapping: dict[str, tuple[int | str, ...]]

    def __post_init__(self) -> None:
        if not self.mapping:
            raise ValueError("mapping must name at least one new class")
        if len(self.mapping) >= IGNORE_CLASS:
            raise ValueError(f"at most {IGNORE_CLASS - 1} new classes fit a uint8 class map")


@register_representation("semantic_mapper")
class SemanticMapper(Representation):
    Params = SemanticMapperParams
    inputs = (Input("semantic"),)
    compute_backends = ("cpu", "cuda")
    interpolation = "nearest"
    storage_dtype = np.uint8

    def bind(self) -> None:
        source = self.dependencies["semantic"]
        self._source_to_new: dict[int, int] = {}
        for new_id, (new_name, items) in enumerate(self.params.mapping.items()):
            for src in resolve_class_ids(items, source):
                if src in self._source_to_new:
                    raise ValueError(f"source class {src} is mapped twice (to "
                                     f"'{self.classes[self._source_to_new[src]]}' and '{new_name}')")
                self._source_to_new[src] = new_id

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.params.mapping)

    def compute(self, batch: ComputeBatch) -> Any:
        src = class_ids(batch.inputs["semantic"], self.dependencies["semantic"])
        lut = np.full(max(table_size(src), max(self._source_to_new) + 1), IGNORE_CLASS, np.uint8)
        for s, n in self._source_to_new.items():
            lut[s] = n
        return apply_lut(src, lut)

    def definition(self) -> dict:
        return {**super().definition(), "classes": list(self.classes)}  # mapping order sets the ids

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.classes_to_image(decoded, len(self.classes))
