"""A representation's compute on a batch already where it runs; checks what came back."""

from __future__ import annotations

from typing import Any

from ...representation import ComputeBatch, Representation
from ..contracts import Operator

__all__ = ["ComputeOperator"]


class ComputeOperator(Operator[ComputeBatch, Any]):
    name = "compute"

    def __init__(self, representation: Representation):
        super().__init__()
        self.representation = representation

    def run(self, item: ComputeBatch) -> Any:
        raw = self.representation.compute(item)
        shape = getattr(raw, "shape", None)
        if shape is None or len(shape) < 3 or shape[0] != len(item.indices):
            raise ValueError(f"compute returned {type(raw).__name__} {shape or ''} for a batch of "
                             f"{len(item.indices)} frames; expected (B, H, W[, C])")
        return raw

    def frames_of(self, item: ComputeBatch) -> int:
        return len(item.indices)
