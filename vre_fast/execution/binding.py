"""A graph node bound to one run: where it writes, its output size, its counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._builder import GraphNode
from .._cfg import RepresentationCfg
from ..errors import StoreError
from ..representation import Representation
from ..store import FrameFiles, RepresentationMetadata

__all__ = ["NodeBinding", "NodeStats"]


@dataclass
class NodeStats:
    computed: int = 0
    loaded: int = 0
    failed_frames: set[int] = field(default_factory=set)
    compute_seconds: float = 0.0  # compute, the copies around it, resizing and encoding
    set_up: bool = False
    setup_seconds: float = 0.0  # setup + prepare: loading weights, building or loading an engine
    batch_size: int = 0  # the batch size in use: the config's, halved on each out-of-memory
    oom_halvings: int = 0
    copies_to_device: int = 0  # host->device copies of its frames and inputs (counted by the runtime)
    copies_to_host: int = 0  # device->host copies of its outputs (storage, pictures, dependants elsewhere)


@dataclass
class NodeBinding:
    node: GraphNode
    output_size: tuple[int, int]
    files: FrameFiles | None  # None: a live stream, nothing is stored
    metadata: RepresentationMetadata | None  # None: not stored (a pure dependency, or a stream)
    stats: NodeStats = field(default_factory=NodeStats)

    def __post_init__(self) -> None:
        self.stats.batch_size = self.node.cfg.batch_size

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def cfg(self) -> RepresentationCfg:
        return self.node.cfg

    @property
    def representation(self) -> Representation:
        return self.node.representation

    def load(self, frame: int) -> np.ndarray:
        """A stored output read back for a dependant; one of another size was not written by this graph."""
        assert self.files is not None
        stored = self.files.read(frame)
        if stored.shape[:2] != self.output_size:
            raise StoreError(f"{self.files.directory / 'npz'} frame {frame}: the stored array is "
                             f"{'x'.join(map(str, stored.shape))}, but '{self.name}' is {self.output_size[1]}x"
                             f"{self.output_size[0]} in this run; replaced by hand? run `vre-fast metadata rebuild "
                             f"{self.files.directory.parent}`")
        return stored
