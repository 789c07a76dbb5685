"""How the reader rescales a representation's values with its statistics: `min_max` or `standardization`.

Each is a small class over float32 arrays; which one applies to which representation is data (a string for
all, or a {name: kind} mapping whose "*" covers the rest). Class maps are never normalised: "*" and a
string skip them, and naming one is refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from .statistics import ChannelStatistics

__all__ = ["NORMALIZATIONS", "Normalization", "normalizations"]


class Normalization(ABC):
    name: ClassVar[str]

    @abstractmethod
    def apply(self, values: np.ndarray, stats: ChannelStatistics) -> np.ndarray:
        """float32 values rescaled per channel; a channel with no spread becomes 0 (not NaN)."""


def _per_channel(values: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    shape = values.shape[-1:] if values.ndim == 3 else ()
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0).reshape(shape).astype(np.float32)
    return (values.astype(np.float32) - offset.reshape(shape).astype(np.float32)) * inverse


class MinMax(Normalization):
    name = "min_max"

    def apply(self, values: np.ndarray, stats: ChannelStatistics) -> np.ndarray:
        return _per_channel(values, stats.min, stats.max - stats.min)


class Standardization(Normalization):
    name = "standardization"

    def apply(self, values: np.ndarray, stats: ChannelStatistics) -> np.ndarray:
        return _per_channel(values, stats.mean, stats.std)


NORMALIZATIONS: dict[str, Normalization] = {n.name: n for n in (MinMax(), Standardization())}


def normalizations(spec: str | Mapping[str, str | None] | None, names: Sequence[str],
                   class_maps: set[str]) -> dict[str, Normalization]:
    """{name: normalization} for the representations that get one."""
    if spec is None:
        return {}
    given = {"*": spec} if isinstance(spec, str) else dict(spec)
    unknown = set(given) - {"*", *names}
    if unknown:
        raise ConfigError(f"normalization: {sorted(unknown)} not among the reader's representations {list(names)}")
    refused = sorted(set(given) & class_maps)
    if any(given[n] is not None for n in refused):
        raise ConfigError(f"normalization: {refused} are class maps (class ids, not measurements); leave them out")
    chosen = {name: given.get(name, None if name in class_maps else given.get("*")) for name in names}
    for name, kind in chosen.items():
        if kind is not None and kind not in NORMALIZATIONS:
            raise ConfigError(f"normalization: unknown kind {kind!r} for '{name}'; known: {', '.join(NORMALIZATIONS)}")
    return {name: NORMALIZATIONS[kind] for name, kind in chosen.items() if kind is not None}
