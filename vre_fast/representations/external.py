"""Per-frame arrays computed elsewhere (labels, other tools' outputs), read from a directory.

A frame's file is `<path>/<pattern>.<ext>` with `pattern` formatted with `frame` (e.g.
`{frame:06d}`); the first of npz, npy, png, jpg that exists is used. Values are passed on
unchanged (dtype included); a missing frame is an error naming the files looked for. With `classes` the
files hold class maps, or with `probabilities: true` per-class scores, (H, W, len(classes)) floats (what VRE
stores for a segmenter with `disk_data_argmax: false`, its Mask2Former's default): dependants that need
class ids take their argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .._registry import register_representation
from ..kernels import colormaps
from ..kernels.lookup import class_argmax
from ..representation import ComputeBatch, Representation

_EXTENSIONS = ("npz", "npy", "png", "jpg")


@dataclass(frozen=True)
class ExternalParams:
    path: str
    pattern: str = "{frame}"
    key: str | None = None  # npz key; default: the file's only / first array
    classes: tuple[str, ...] | None = None  # class names when the files hold class maps
    probabilities: bool = False  # the files hold per-class scores (H, W, classes), not class ids
    interpolation: Literal["auto", "linear", "nearest"] = "auto"  # auto: nearest for integer data

    def __post_init__(self) -> None:
        try:
            self.pattern.format(frame=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"pattern {self.pattern!r} must format with only {{frame}}: {exc}") from None
        if self.probabilities and not self.classes:
            raise ValueError("probabilities: per-class scores need the class names ('classes')")


@register_representation("external")
@register_representation("from_disk")
class External(Representation):
    Params = ExternalParams
    later_parameters = {"probabilities": False}

    @property
    def classes(self) -> tuple[str, ...] | None:
        return self.params.classes

    @property
    def class_probabilities(self) -> bool:
        return self.params.probabilities

    @property
    def interpolation(self) -> str:  # type: ignore[override]
        return self.params.interpolation

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        arrays = [self._load(i) for i in batch.indices]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"frames {batch.indices} in {self.params.path} have different shapes {shapes}")
        if self.params.probabilities and (arrays[0].ndim != 3 or arrays[0].shape[-1] != len(self.classes)):
            raise ValueError(f"frames {batch.indices} in {self.params.path}: expected (H, W, {len(self.classes)}) "
                             f"class scores, got shape {arrays[0].shape}")
        return np.stack(arrays)

    def _load(self, frame: int) -> np.ndarray:
        stem = Path(self.params.path) / self.params.pattern.format(frame=frame)
        for ext in _EXTENSIONS:
            path = stem.with_name(f"{stem.name}.{ext}")
            if path.exists():
                return _read_array(path, self.params.key)
        tried = ", ".join(f"{stem.name}.{e}" for e in _EXTENSIONS)
        raise FileNotFoundError(f"no file for frame {frame} in {stem.parent} (looked for {tried})")

    def encode(self, output: np.ndarray) -> np.ndarray:
        return output

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        if self.classes is not None:
            ids = class_argmax(decoded) if self.params.probabilities else decoded
            return colormaps.classes_to_image(ids, len(self.classes))
        return colormaps.auto_to_image(decoded)


def _read_array(path: Path, key: str | None) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if key is not None and key not in data.files:
                raise KeyError(f"{path} has no array '{key}'; it has {data.files}")
            return data[key or data.files[0]]
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 and img.shape[2] == 3 else img
