"""Safe-landing mask: flat enough surfaces (normals), optionally restricted to safe classes.

Geometric part: with `criterion: vre`, Dronescapes2's rule on the normals stored VRE's way,
v = (n + 1) / 2: v2 > 0.8 and v1 + v3 < 1.2. By default (`angle`), a pixel is safe where its camera
normal is within `max_angle_deg` of `reference_axis` (the ground's normal in the camera frame under VRE's
convention of normals pointing away from the camera: +y, down the image, for a camera
looking forward over the ground). With a `semantic` input, the pixel's class must also be
one of `safe_classes`. Undefined normals (zero vectors) are never safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.safe_landing import safe_landing
from ..representation import ComputeBatch, Input, Representation
from ._classes import class_ids, class_table, resolve_class_ids


@dataclass(frozen=True)
class SafeLandingParams:
    # "angle": within max_angle_deg of reference_axis; "vre": Dronescapes2's rule on v = (n + 1) / 2:
    # v2 > 0.8 and v1 + v3 < 1.2
    criterion: Literal["angle", "vre"] = "angle"
    max_angle_deg: float = 30.0
    reference_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    safe_classes: tuple[int | str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.max_angle_deg <= 90:
            raise ValueError(f"max_angle_deg must be in (0, 90], got {self.max_angle_deg}")
        if not any(self.reference_axis):
            raise ValueError("reference_axis must not be the zero vector")


@register_representation("safe_landing")
class SafeLanding(Representation):
    Params = SafeLandingParams
    inputs = (Input("normals"), Input("semantic", optional=True))
    interpolation = "nearest"
    storage_dtype = np.uint8

    def validate(self) -> None:
        if ("semantic" in self.dependencies) != bool(self.params.safe_classes):
            raise ValueError("'safe_classes' and a 'semantic' dependency go together: give both or neither")

    def bind(self) -> None:
        semantic = self.dependencies.get("semantic")
        self._safe_ids = resolve_class_ids(self.params.safe_classes, semantic) if semantic else []

    @property
    def compute_backends(self) -> tuple[str, ...]:  # type: ignore[override]
        """The angle rule is a kernel on either backend; the `vre` rule is NumPy on the host."""
        return ("cpu", "cuda") if self.params.criterion == "angle" else ("cpu",)

    def compute(self, batch: ComputeBatch) -> Any:
        if self.params.criterion == "vre":
            return self._vre_rule(batch)
        classes = batch.inputs.get("semantic")
        if classes is not None:
            classes = class_ids(classes, self.dependencies["semantic"])
        table = class_table(self._safe_ids, 0) if classes is not None else None
        return safe_landing(batch.inputs["normals"], self.params.reference_axis, self.params.max_angle_deg, classes,
                            table)

    def _vre_rule(self, batch: ComputeBatch) -> np.ndarray:
        normals = batch.inputs["normals"].astype(np.float32)
        v1, v2, v3 = np.moveaxis((normals + 1) / 2, -1, 0)
        safe = np.any(normals != 0, axis=-1) & (v2 > 0.8) & (v1 + v3 < 1.2)
        if "semantic" in batch.inputs:
            safe &= np.isin(class_ids(batch.inputs["semantic"], self.dependencies["semantic"]), self._safe_ids)
        return safe.astype(np.uint8)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.unit_to_image(decoded)
