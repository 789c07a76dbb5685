"""Class ids from a mix of ids and names, resolved through a segmentation dependency's class list; class
ids from a class map or from class probabilities; and the storage of a segmenter that may keep its class
probabilities (VRE's `disk_data_argmax: false`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..kernels import colormaps
from ..kernels.lookup import class_argmax
from ..representation import Representation


def resolve_class_ids(items: Iterable[int | str], source: Representation) -> list[int]:
    names = source.classes
    ids = []
    for item in items:
        if isinstance(item, int):
            if item < 0 or (names is not None and item >= len(names)):
                raise ValueError(f"class id {item} is out of range for '{source.name}'"
                                 + (f" ({len(names)} classes)" if names is not None else ""))
            ids.append(item)
        elif names is None:
            raise ValueError(f"class name '{item}' needs '{source.name}' to declare its classes "
                             f"(give class ids instead, or a 'classes' list on '{source.name}')")
        elif item not in names:
            raise ValueError(f"'{source.name}' has no class '{item}'; its classes: {list(names)}")
        else:
            ids.append(names.index(item))
    return ids


def class_table(ids: list[int], size: int) -> np.ndarray:
    """uint8 table, 1 at `ids`, of at least `size` entries (one per possible class id)."""
    table = np.zeros(max(size, max(ids, default=0) + 1), np.uint8)
    table[ids] = 1
    return table


def table_size(class_map: np.ndarray) -> int:
    """Entries a lookup table needs for every id `class_map` can hold."""
    return 256 if class_map.dtype == np.uint8 else int(class_map.max(initial=0)) + 1


def class_ids(values: Any, source: Representation) -> Any:
    """(B, H, W) class ids from what `source` gives its dependants: its class map ((B, H, W) or (B, H, W, 1)
    integers) or, where it stores class probabilities, their argmax; on the device the array lives on. Float
    (B, H, W, len(classes)) values are scores whether or not `source` says so (a VRE dataset's segmenter
    read with its class names)."""
    scores = (np.issubdtype(values.dtype, np.floating) and values.ndim == 4 and source.classes is not None
              and values.shape[3] == len(source.classes) > 1)
    if source.class_probabilities or scores:
        return class_argmax(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"expected an integer class map from '{source.name}', got {values.dtype}")
    return values.reshape(values.shape[:3])


class ClassMapExpert:
    """Mixin for a segmenter (before its Representation base) whose params have `probabilities: bool`:
    False (the default) stores the argmax as a uint8 class map, True the per-class probabilities, (H, W, C)
    float16 by default (VRE's `disk_data_argmax: false`), resized linearly. Dependants read the
    probabilities and take the argmax where they need ids (`class_ids`); pictures draw the argmax.
    `postprocess` gives (B, h, w, C) probabilities summing to 1 over C; this mixin's `class_output` turns them
    into what is stored."""

    params: Any
    classes: tuple[str, ...] | None

    def native_storage_dtype(self) -> np.dtype:
        return np.dtype(np.float16 if self.params.probabilities else np.uint8)

    @property
    def class_probabilities(self) -> bool:
        return self.params.probabilities

    @property
    def interpolation(self) -> str:  # type: ignore[override]
        return "linear" if self.params.probabilities else "nearest"

    def class_output(self, probabilities: np.ndarray) -> np.ndarray:
        """(B, h, w, C) probabilities -> the computed output: themselves, or their argmax (uint8)."""
        return probabilities if self.params.probabilities else class_argmax(probabilities)

    @property
    def later_parameters(self) -> dict[str, Any]:
        """`probabilities` is recorded only when set, so class maps stored before it existed still match (and a
        dataset of probabilities is never mixed with one of class ids)."""
        return {**super().later_parameters, "probabilities": False}  # type: ignore[misc]

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        ids = class_argmax(decoded) if self.params.probabilities else decoded
        return colormaps.classes_to_image(ids, len(self.classes) if self.classes else None)
