"""Class ids from a mix of ids and names, resolved through a segmentation dependency's class list."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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
