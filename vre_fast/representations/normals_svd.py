"""Camera normals from any depth dependency by a per-pixel SVD plane fit (see kernels.normals_svd).

Stored as float16 unit vectors in [-1, 1] in the camera frame (x right, y down, z forward),
pointing away from the camera unless `orientation: camera`; undefined pixels are (0, 0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.normals_svd import depth_to_normals, intrinsics_from_fov
from ..representation import ComputeBatch, Input, Representation, kernel_backend


@dataclass(frozen=True)
class NormalsSvdParams:
    window_size: int = 11
    # "svd": plane fit over the window; "cross": cross product of central differences (cheaper, noisier)
    method: Literal["svd", "cross"] = "svd"
    # "away" from the camera (VRE's and Dronescapes' convention) or towards the "camera"
    orientation: Literal["away", "camera"] = "away"
    # camera: a diagonal FOV (degrees) of a sensor of sensor_size (width, height) pixels, as in VRE ...
    sensor_fov: float | None = None
    sensor_size: tuple[int, int] | None = None
    # ... or pinhole intrinsics (fx, fy, cx, cy) in pixels of the depth map this node receives
    intrinsics: tuple[float, float, float, float] | None = None
    # fit on every n-th pixel, then resize back to the output size
    input_downsample_step: int = 1
    min_valid: int = 3

    def __post_init__(self) -> None:
        if self.window_size < 3 or self.window_size % 2 == 0:
            raise ValueError(f"window_size must be odd and >= 3, got {self.window_size}")
        if (self.sensor_fov is None) == (self.intrinsics is None):
            raise ValueError("give exactly one of 'sensor_fov' (with optional 'sensor_size') or 'intrinsics'")
        if self.sensor_fov is not None and not 0 < self.sensor_fov < 180:
            raise ValueError(f"sensor_fov must be in (0, 180) degrees, got {self.sensor_fov}")
        if self.input_downsample_step < 1:
            raise ValueError(f"input_downsample_step must be >= 1, got {self.input_downsample_step}")
        if self.min_valid < 3:
            raise ValueError(f"min_valid must be >= 3 (a plane needs 3 points), got {self.min_valid}")


@register_representation("normals_svd")
class NormalsSvd(Representation):
    Params = NormalsSvdParams
    inputs = (Input("depth"),)
    compute_backends = ("cpu", "cuda")
    interpolation = "nearest"  # keeps unit length and crisp invalid regions

    def setup(self, device: str) -> None:
        """Loads the compiled kernels on a tiny plane, so their first call counts as set-up, not compute."""
        p = self.params
        size = 2 * p.window_size
        depth = np.ones((1, size, size), np.float32)
        depth_to_normals(depth, self._intrinsics((size, size), 1), p.window_size, p.method, p.min_valid,
                         backend=kernel_backend(device))

    def compute(self, batch: ComputeBatch) -> Any:
        depth = batch.inputs["depth"]
        if depth.ndim == 4:
            if depth.shape[-1] != 1:
                raise ValueError(f"expected a single-channel depth map, got shape {depth.shape[1:]}")
            depth = depth.reshape(depth.shape[:3])
        p = self.params
        step = p.input_downsample_step
        return depth_to_normals(depth, self._intrinsics(depth.shape[1:3], step), p.window_size, p.method,
                                p.min_valid, step=step, flip=p.orientation == "camera")

    def _intrinsics(self, hw: tuple[int, int], step: int) -> tuple[float, float, float, float]:
        p = self.params
        if p.intrinsics is not None:
            fx, fy, cx, cy = p.intrinsics
        else:
            fx, fy, cx, cy = intrinsics_from_fov(p.sensor_fov, p.sensor_size or (hw[1], hw[0]), (hw[1], hw[0]))
        return fx / step, fy / step, cx / step, cy / step

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.normals_to_image(decoded)
