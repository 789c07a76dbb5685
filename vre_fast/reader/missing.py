"""What the reader does with a frame that a chosen representation lacks: VRE's policies, as data.

A policy answers what `VREDataset` asks (the mechanism is in dataset.py): when it lists its frames, do
frames lacking this representation leave the dataset (`drops_frames`; those policies are applied first), may
the ones left lack it (`refuse`), and when it reads one of them, what stands in for the value (`fill`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, StoreError

__all__ = ["MISSING_POLICIES", "ItemSpec", "MissingPolicy", "missing_policies"]

DEFAULT_POLICY = "raise"


@dataclass(frozen=True)
class ItemSpec:
    """Shape and dtype of one representation's value in an item (as the reader returns it)."""

    shape: tuple[int, ...]
    dtype: np.dtype


class MissingPolicy(ABC):
    name: ClassVar[str]
    drops_frames: ClassVar[bool] = False  # frames lacking the representation leave the dataset
    may_be_none: ClassVar[bool] = False  # items may hold None: collate_fn adds a `present` mask

    def refuse(self, representation: str, lacking: Sequence[int], where: str) -> None:
        """Called once by VREDataset after the dropping policies, with the dataset's frames that still lack
        `representation`; raises to refuse the dataset."""

    @abstractmethod
    def fill(self, spec: ItemSpec) -> np.ndarray | None:
        """The value of a frame that lacks the representation (called per item)."""

    def check(self, representation: str, spec: ItemSpec) -> None:
        """Called once by VREDataset after it learns the value's shape and dtype; raises if this policy
        cannot stand in for it."""


class _NeverFills(MissingPolicy):
    def fill(self, spec: ItemSpec) -> None:
        raise AssertionError(f"the '{self.name}' policy leaves no frame that lacks its representation")


class RaiseOnMissing(_NeverFills):
    name = "raise"

    def refuse(self, representation: str, lacking: Sequence[int], where: str) -> None:
        if not lacking:
            return
        shown = ", ".join(map(str, lacking[:8])) + (" ..." if len(lacking) > 8 else "")
        raise StoreError(f"representation '{representation}' in {where} lacks {len(lacking)} of the dataset's frames "
                         f"({shown}); choose missing='drop' (keep only frames every representation has) or a "
                         f"fill_zero / fill_nan / fill_none policy for it")


class DropFrame(_NeverFills):
    name = "drop"
    drops_frames = True


class FillZero(MissingPolicy):
    name = "fill_zero"

    def fill(self, spec: ItemSpec) -> np.ndarray:
        return np.zeros(spec.shape, spec.dtype)


class FillNan(MissingPolicy):
    name = "fill_nan"

    def check(self, representation: str, spec: ItemSpec) -> None:
        if not np.issubdtype(spec.dtype, np.floating):
            raise ConfigError(f"missing: fill_nan cannot fill '{representation}' ({spec.dtype.name} values hold no "
                              f"NaN); use fill_zero, fill_none or drop for it")

    def fill(self, spec: ItemSpec) -> np.ndarray:
        return np.full(spec.shape, np.nan, spec.dtype)


class FillNone(MissingPolicy):
    name = "fill_none"
    may_be_none = True

    def fill(self, spec: ItemSpec) -> None:
        return None


MISSING_POLICIES: dict[str, MissingPolicy] = {p.name: p for p in (RaiseOnMissing(), DropFrame(), FillZero(),
                                                                   FillNan(), FillNone())}


def missing_policies(missing: str | Mapping[str, str], names: Sequence[str]) -> dict[str, MissingPolicy]:
    """{name: policy} from one policy for all, or a {name: policy} mapping whose "*" sets the others
    (default "raise")."""
    spec = {"*": missing} if isinstance(missing, str) else dict(missing)
    unknown = set(spec) - {"*", *names}
    if unknown:
        raise ConfigError(f"missing: {sorted(unknown)} not among the reader's representations {list(names)}")
    chosen = {name: spec.get(name, spec.get("*", DEFAULT_POLICY)) for name in names}
    for name, policy in chosen.items():
        if policy not in MISSING_POLICIES:
            raise ConfigError(f"missing: unknown policy {policy!r} for '{name}'; known: {', '.join(MISSING_POLICIES)}")
    return {name: MISSING_POLICIES[policy] for name, policy in chosen.items()}
