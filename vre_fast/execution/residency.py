"""Which representations are set up, and for which input: what lets one process run many chunks (a worker's
units, `vre_fast.scale`) without loading its experts again for each.

The batch executor asks `ensure` before a node's first batch of a run and `release` tears everything down. A
run that owns its residency releases it when it ends (what a single `vre-fast run` does); a worker session
keeps one across its runs and releases it when the session closes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..representation import ComputeBatch, Representation
from .node import NodeExecution

__all__ = ["Residency"]


class Residency:
    """Set-up representations, each with the input its `prepare` saw.

    `prepare` is fed the input's first frames (an engine's shape profile, an INT8 model's calibration), so a
    representation that overrides it is set up again for another input: its outputs then stay those a run
    over that input alone computes. One that does not override it is set up once for all inputs."""

    def __init__(self) -> None:
        self._prepared_for: dict[int, tuple[Representation, Hashable]] = {}  # id(representation) -> (it, input)

    def ensure(self, execution: NodeExecution, input_key: Hashable, sample: Callable[[], ComputeBatch]) -> float:
        """Called by `BatchExecutor` before a node's first batch in a run: sets it up (and prepares it for
        `input_key`'s `sample`) unless it already is; the seconds that took (0.0 when it was resident)."""
        rep = execution.representation
        held = self._prepared_for.get(id(rep))
        if held is not None:
            if held[1] == input_key or type(rep).prepare is Representation.prepare:
                return 0.0
            del self._prepared_for[id(rep)]
            rep.teardown()
        self._prepared_for[id(rep)] = (rep, input_key)  # teardown is due even if setting up fails half-way
        return execution.setup() + execution.prepare(sample)

    def release(self) -> None:
        """Tears every held representation down (each once), the last set up first."""
        held, self._prepared_for = list(self._prepared_for.values()), {}
        for rep, _ in reversed(held):
            rep.teardown()

    def __len__(self) -> int:
        return len(self._prepared_for)
