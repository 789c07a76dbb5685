"""The per-pixel majority class of up to five class maps with the same classes (ties: the lowest id).

Dronescapes2's `semantic_output` is this vote over its three Mask2Former segmentations mapped to the
Dronescapes classes.
"""

from __future__ import annotations

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.colormaps import IGNORE_CLASS
from ..representation import ComputeBatch, Input, Representation
from ._classes import class_ids


@register_representation("semantic_vote")
class SemanticVote(Representation):
    inputs = (Input("semantic1"), Input("semantic2"), Input("semantic3", optional=True),
              Input("semantic4", optional=True), Input("semantic5", optional=True))
    interpolation = "nearest"
    storage_dtype = np.uint8

    def validate(self) -> None:
        classes = {dep.classes for dep in self.dependencies.values()}
        if len(classes) != 1 or None in classes:
            raise ValueError(f"every input needs the same declared classes, got {sorted(map(str, classes))}")

    @property
    def classes(self) -> tuple[str, ...] | None:
        return next(iter(self.dependencies.values())).classes

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        n = len(self.classes)
        maps = [class_ids(batch.inputs[i.role], self.dependencies[i.role]) for i in self.inputs
                if i.role in batch.inputs]
        counts = np.zeros((*maps[0].shape, n), np.uint8)
        for m in maps:
            for c in range(n):
                counts[..., c] += m == c
        out = counts.argmax(-1).astype(np.uint8)
        out[counts.max(-1) == 0] = IGNORE_CLASS  # every input unmapped here
        return out

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.classes_to_image(decoded, len(self.classes))
