"""Error policy: a frame failed for a representation (a damaged stored file, an exception in compute, a
failed dependency). `stop` ends the run, naming the representation and the frame; `skip` records the
failure in the metadata and goes on (dependants of that frame fail too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ErrorPolicy", "Skip", "Stop"]


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Skip:
    pass


@dataclass(frozen=True)
class ErrorPolicy:
    mode: Literal["stop", "skip"] = "stop"

    def __post_init__(self) -> None:
        if self.mode not in ("stop", "skip"):
            raise ValueError(f"on_error must be 'stop' or 'skip', got {self.mode!r}")

    def decide(self, node: str, frame: int, exc: BaseException) -> Stop | Skip:
        return Stop() if self.mode == "stop" else Skip()
