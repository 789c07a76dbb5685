"""Per-channel statistics of a representation over a dataset's frames: min, max, mean, std.

Computed in one streaming pass: each frame's count, mean and sum of squared deviations (two passes over that
frame, in float64) are merged into the running totals with Chan et al.'s parallel formula, so the result
does not depend on the order or grouping of frames and no frame is held after its update. Only finite
values count (a NaN or inf pixel of one channel leaves the others alone).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..store.atomic import atomic_write_bytes, is_read_only_error

__all__ = ["ChannelStatistics", "RunningStatistics", "load_cached_statistics", "save_cached_statistics"]

logger = logging.getLogger("vre_fast")

CACHE_DIR = ".statistics"  # in the dataset's directory; hidden, so nothing takes it for a representation


@dataclass(frozen=True)
class ChannelStatistics:
    """Per-channel (last axis; one channel for an (H, W) map) statistics, float64 arrays of shape (C,)."""

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # population std (ddof 0), as np.std

    @classmethod
    def coerce(cls, value: ChannelStatistics | Mapping[str, Sequence[float]], name: str) -> ChannelStatistics:
        """Statistics given by the caller: an instance, or a mapping with min, max, mean and std."""
        if isinstance(value, ChannelStatistics):
            return value
        try:
            arrays = {k: np.atleast_1d(np.asarray(value[k], np.float64)) for k in ("min", "max", "mean", "std")}
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"statistics['{name}']: expected min, max, mean and std per channel ({exc})") from None
        if len({a.shape for a in arrays.values()}) != 1:
            raise StoreError(f"statistics['{name}']: min, max, mean and std must have one value per channel each")
        return cls(**arrays)

    def to_json(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("min", "max", "mean", "std")}


class RunningStatistics:
    """Running per-channel totals; `update` with one frame at a time, `result` at the end."""

    def __init__(self) -> None:
        self.count: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        x = values.reshape(-1, values.shape[-1] if values.ndim == 3 else 1).astype(np.float64)
        finite = np.isfinite(x)
        count = finite.sum(0)
        safe = np.maximum(count, 1)
        x0 = np.where(finite, x, 0.0)
        mean = x0.sum(0) / safe
        m2 = np.where(finite, (x - mean) ** 2, 0.0).sum(0)
        low = np.where(finite, x, np.inf).min(0)
        high = np.where(finite, x, -np.inf).max(0)
        if self.count is None:
            self.count, self.mean, self.m2, self.min, self.max = count, mean, m2, low, high
            return
        total = self.count + count
        weight = count / np.maximum(total, 1)
        delta = mean - self.mean
        self.mean = self.mean + delta * weight
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * weight
        self.count = total
        self.min, self.max = np.minimum(self.min, low), np.maximum(self.max, high)

    def result(self, name: str) -> ChannelStatistics:
        if self.count is None or not self.count.all():
            raise StoreError(f"representation '{name}': no finite value to compute its statistics from")
        return ChannelStatistics(self.min, self.max, self.mean, np.sqrt(self.m2 / self.count))


def _cache_path(root: Path, name: str, key: str) -> Path:
    return root / CACHE_DIR / f"{name}-{key}.json"


def load_cached_statistics(root: Path, name: str, key: str) -> ChannelStatistics | None:
    """The statistics cached for exactly these frames (the key hashes the definition and each frame's run), if
    any; a damaged cache file counts as none."""
    try:
        data: Any = json.loads(_cache_path(root, name, key).read_bytes())
        return ChannelStatistics.coerce(data, name)
    except (OSError, ValueError, StoreError):
        return None


def save_cached_statistics(root: Path, name: str, key: str, statistics: ChannelStatistics) -> None:
    """Best effort: a read-only dataset is read all the same, its statistics recomputed next time."""
    path = _cache_path(root, name, key)
    try:
        path.parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, json.dumps(statistics.to_json()).encode(), durable=False)
    except OSError as exc:
        if not is_read_only_error(exc):
            raise
        logger.debug("statistics of '%s' not cached: %s is read-only", name, root)
