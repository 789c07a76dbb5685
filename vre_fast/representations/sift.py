"""SIFT keypoints (OpenCV's `cv2.SIFT_create`) as a per-pixel map of keypoint strength.

VRE's `descriptor/sift` (a NumPy port of the same algorithm as OpenCV's) stores each frame's (N, 128)
descriptors and puts the keypoints (position, size, angle, response, octave) in a pickled side file. A
stored output here is one array per frame at the frame's size, so this keeps the keypoints' map: at each
keypoint's pixel (its position rounded) its response, the |DoG| contrast at the extremum (the strongest where
several share a pixel), 0 elsewhere; stored as float16 (responses to 2^-11 relative). Descriptors are not
stored. `max_keypoints` keeps the strongest ones, as VRE's does before it computes descriptors. An
`output_size` smaller than the frame keeps only the points on the pixels nearest resizing samples (VRE
rescales its keypoint list instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .._registry import register_representation
from ..representation import ComputeBatch, Representation


@dataclass(frozen=True)
class SiftParams:
    max_keypoints: int | None = None  # the strongest K (OpenCV's nfeatures); None: all
    num_intervals: int = 3  # scales per octave (nOctaveLayers)
    sigma: float = 1.6  # blur of the first scale
    contrast_threshold: float = 0.04  # OpenCV's and VRE's default
    edge_threshold: float = 10.0  # principal curvature ratio (VRE's eigenvalue_ratio)
    process_scale: float = 1.0  # detect on the frame resized by this, positions mapped back

    def __post_init__(self) -> None:
        if self.max_keypoints is not None and self.max_keypoints < 1:
            raise ValueError(f"max_keypoints must be at least 1 (or null for all), got {self.max_keypoints}")
        if self.num_intervals < 1:
            raise ValueError(f"num_intervals must be at least 1, got {self.num_intervals}")
        if self.sigma <= 0 or self.contrast_threshold < 0 or self.edge_threshold <= 0:
            raise ValueError("sigma and edge_threshold must be positive, contrast_threshold not negative")
        if not 0 < self.process_scale <= 4:
            raise ValueError(f"process_scale must be in (0, 4], got {self.process_scale}")


def keypoint_map(keypoints: tuple[cv2.KeyPoint, ...], shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """(H, W) float32: the largest response of the keypoints at each pixel (positions divided by `scale`)."""
    out = np.zeros(shape, np.float32)
    if not keypoints:
        return out
    xy = np.array([kp.pt for kp in keypoints], np.float64) / scale
    response = np.array([kp.response for kp in keypoints], np.float32)
    cols = np.clip(np.rint(xy[:, 0]).astype(np.int64), 0, shape[1] - 1)
    rows = np.clip(np.rint(xy[:, 1]).astype(np.int64), 0, shape[0] - 1)
    np.maximum.at(out, (rows, cols), response)
    return out


@register_representation("sift")
class Sift(Representation):
    Params = SiftParams
    interpolation = "nearest"  # a sparse map: linear resizing would smear and weaken each point

    def bind(self) -> None:
        p = self.params
        self._sift = cv2.SIFT_create(nfeatures=p.max_keypoints or 0, nOctaveLayers=p.num_intervals,
                                     contrastThreshold=p.contrast_threshold, edgeThreshold=p.edge_threshold,
                                     sigma=p.sigma)

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        scale = self.params.process_scale
        out = []
        for frame in batch.frames:
            gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
            if scale != 1.0:
                size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
                gray = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
            out.append(keypoint_map(self._sift.detect(gray, None), frame.shape[:2], scale))
        return np.stack(out)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        """Each keypoint as a 3x3 dot on black, brighter for a stronger one (the frame's largest response)."""
        images = np.zeros((*decoded.shape[:3], 3), np.uint8)
        for image, points in zip(images, decoded.reshape(decoded.shape[:3])):
            top = points.max()
            if top > 0:
                level = cv2.dilate(points / top, np.ones((3, 3), np.uint8))
                image[..., 0] = image[..., 1] = np.round(255 * np.sqrt(level)).astype(np.uint8)
                image[..., 2] = (level > 0) * 255
        return images
