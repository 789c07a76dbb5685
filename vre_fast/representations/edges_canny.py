"""Canny edges (OpenCV) on the RGB frame, stored as a {0, 1} uint8 map and read back as float32."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch, Representation


@dataclass(frozen=True)
class CannyParams:
    threshold1: float = 100.0
    threshold2: float = 200.0
    aperture_size: int = 3
    l2_gradient: bool = False

    def __post_init__(self) -> None:
        if self.aperture_size not in (3, 5, 7):
            raise ValueError(f"aperture_size must be 3, 5 or 7, got {self.aperture_size}")


@register_representation("edges_canny")
class EdgesCanny(Representation):
    Params = CannyParams
    interpolation = "nearest"
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        p = self.params
        edges = [cv2.Canny(np.ascontiguousarray(f), p.threshold1, p.threshold2, apertureSize=p.aperture_size,
                           L2gradient=p.l2_gradient) for f in batch.frames]
        return (np.stack(edges) > 0).astype(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return stored.astype(np.float32)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
