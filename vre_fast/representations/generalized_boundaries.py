"""Generalized boundaries' soft segmentation (Leordeanu et al., ECCV 2012), VRE's
`soft-segmentation/generalized-boundaries`: a few smooth maps in [0, 1] that change across object boundaries
and stay flat inside regions, from which colours co-occur in patches (kernels/soft_segmentation.py).

Stored as (H, W, C) float16: C = 3 with `adjust_to_rgb` (the maps fitted to the RGB, so the picture looks
like the frame), else `max_channels`. Computed from the RGB frame, as VRE does, or, given the optional input
`maps` (`dependencies: {maps: NAME}`), from another representation's maps: the picture its own `make_image`
draws of them (normals, depth, a class map, HSV, ... as a colour image), so boundaries can come from what other
representations see rather than from the colours of the frame. The eigenvectors are sorted
(largest first) and signed (largest component positive), where VRE's order and signs are whatever LAPACK's
general eigensolver returns: with the same parameters the maps span the same components, possibly in
another order or negated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.soft_segmentation import soft_segmentation
from ..representation import ComputeBatch, Input, Representation


@dataclass(frozen=True)
class GeneralizedBoundariesParams:
    max_channels: int = 3  # soft-segmentation maps (principal components) kept
    use_median_filtering: bool = True  # 3 x 3 median of the maps before resizing
    adjust_to_rgb: bool = True  # fit the maps to the RGB (3 channels out)
    internal_size: int = 300  # long side of the frame the algorithm runs on (VRE's fixed 300)

    def __post_init__(self) -> None:
        if self.max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, got {self.max_channels}")
        if self.internal_size < 48:
            raise ValueError(f"internal_size must be at least 48 (patches are 16 px), got {self.internal_size}")


@register_representation("generalized_boundaries")
class GeneralizedBoundaries(Representation):
    Params = GeneralizedBoundariesParams
    inputs = (Input("maps", optional=True),)

    def setup(self, device: str) -> None:
        """Loads the compiled patch kernel on a small frame, so its first call is not counted as compute."""
        soft_segmentation(np.zeros((48, 48, 3), np.uint8), internal_size=48)

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        p = self.params
        images = self.dependencies["maps"].make_image(batch.inputs["maps"]) if "maps" in batch.inputs else batch.frames
        return np.stack([soft_segmentation(np.ascontiguousarray(f), p.max_channels, p.use_median_filtering,
                                           p.adjust_to_rgb, p.internal_size) for f in images])

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        """The first three maps as R, G, B (one map: grey; two: the third channel black)."""
        x = decoded if decoded.ndim == 4 else decoded[..., None]
        if x.shape[-1] == 1:
            return colormaps.unit_to_image(x[..., 0])
        x = x[..., :3] if x.shape[-1] >= 3 else np.concatenate([x, np.zeros_like(x[..., :1])], -1)
        return colormaps.unit_to_image(np.ascontiguousarray(x))
