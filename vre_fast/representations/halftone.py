"""Halftone: the frame as a CMY print, one screen of dots per ink (VRE's `soft-segmentation/python-halftone`).

The frame (resized to `resolution` first, when given) goes to C, M, Y with `percentage` % of their common
gray removed (gray component replacement), and each ink is screened at its angle (kernels/halftone.py):
a stored value is the ink coverage of a pixel in [0, 1], (H * scale, W * scale, 3), C, M, Y, as VRE stores
them (VRE computes a K screen too and drops it; here it is not computed). Differences from VRE, whose
screens are PIL drawings rotated back with nearest resampling: the dots are evaluated exactly at each
pixel, so edges of dots can differ by a pixel; `antialias` averages 4 x 4 sub-pixels (VRE draws 4x larger
and resizes down bilinearly); the picture is the print (white paper, 1 - C, M, Y) where VRE shows C, M, Y
as R, G, B.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.halftone import halftone_numba
from ..representation import ComputeBatch, Representation


@dataclass(frozen=True)
class HalftoneParams:
    sample: int = 10  # cell size in (resized) input pixels
    scale: int = 1  # output size over the (resized) input size; the largest dot spans sample * scale pixels
    percentage: float = 0.0  # of the C, M, Y common gray removed (to K, not stored)
    angles: tuple[float, float, float, float] = (0, 15, 30, 45)  # C, M, Y, K screens, degrees (K: VRE's, unused)
    antialias: bool = False
    resolution: tuple[int, int] | None = None  # (height, width) the frame is resized to first; None: its own

    def __post_init__(self) -> None:
        if self.sample < 1 or self.scale < 1:
            raise ValueError(f"sample and scale must be at least 1, got {self.sample} and {self.scale}")
        if not 0 <= self.percentage <= 100:
            raise ValueError(f"percentage must be in [0, 100], got {self.percentage}")
        if len(self.angles) != 4:
            raise ValueError(f"angles must give 4 angles (C, M, Y, K), got {list(self.angles)}")
        if self.resolution is not None and (len(self.resolution) != 2 or min(self.resolution) < 1):
            raise ValueError(f"resolution must be [height, width], got {list(self.resolution)}")


@register_representation("halftone")
class Halftone(Representation):
    Params = HalftoneParams

    def setup(self, device: str) -> None:
        """Loads the compiled kernels on a tiny frame, so their first call is set-up, not compute time."""
        halftone_numba(np.zeros((4, 4, 3), np.uint8), 2, 1, 0, (0, 15, 30, 45), False)

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        p = self.params
        out = []
        for frame in batch.frames:
            if p.resolution is not None and frame.shape[:2] != tuple(p.resolution):
                frame = cv2.resize(frame, p.resolution[::-1], interpolation=cv2.INTER_LINEAR)
            out.append(halftone_numba(np.ascontiguousarray(frame), p.sample, p.scale, p.percentage, p.angles,
                                      p.antialias))
        return np.stack(out)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(1 - decoded)
