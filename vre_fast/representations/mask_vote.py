"""A {0, 1} mask voted from up to five masks: `majority`, `all` or `any` of them.

Dronescapes2 builds its binary maps this way: the same classes masked in three segmentations, then
a majority vote; `all` also intersects masks (e.g. buildings that are near).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch, Input, Representation


@dataclass(frozen=True)
class MaskVoteParams:
    mode: Literal["majority", "all", "any"] = "majority"


@register_representation("mask_vote")
class MaskVote(Representation):
    Params = MaskVoteParams
    inputs = (Input("mask1"), Input("mask2"), Input("mask3", optional=True), Input("mask4", optional=True),
              Input("mask5", optional=True))
    interpolation = "nearest"
    storage_dtype = np.uint8

    def validate(self) -> None:
        for dep in self.dependencies.values():
            if dep.class_probabilities:
                raise ValueError(f"'{dep.name}' stores class probabilities, not a {{0, 1}} mask: mask the classes "
                                 f"with a binary_mask on it and vote those")

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        masks = [batch.inputs[i.role].reshape(batch.inputs[i.role].shape[:3]) > 0.5
                 for i in self.inputs if i.role in batch.inputs]
        votes = np.sum(masks, axis=0)
        needed = {"majority": len(masks) // 2 + 1, "all": len(masks), "any": 1}[self.params.mode]
        return (votes >= needed).astype(np.uint8)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
