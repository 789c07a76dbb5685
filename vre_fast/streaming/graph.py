"""StreamGraph: the representation graph, one frame at a time, in memory (the embedding API).

    with StreamGraph.from_config("configs/procedural.yaml", representations=["hsv"]) as graph:
        result = graph.push(frame)          # HxWx3 uint8 RGB
        result.outputs["hsv"], result.seconds["hsv"]

Outputs are the arrays the batch engine would store for the same frame (`encode`d); nodes that the
chosen representations do not need are neither set up nor computed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .._builder import GraphNode, build_graph
from .._cfg import RunCfg
from .._config_loader import load_config
from ..backends import require_cuda
from ..errors import ConfigError, VreError
from ..execution.node import run_representation
from ..representation import ComputeBatch, sample_batch
from ..sources.synthetic import drifting_texture

__all__ = ["StreamGraph", "StreamResult"]


@dataclass
class StreamResult:
    frame_id: int
    outputs: dict[str, np.ndarray]  # chosen representation -> stored (encoded) array
    decoded: dict[str, np.ndarray]  # chosen representation -> decoded array (what make_image draws)
    seconds: dict[str, float] = field(default_factory=dict)  # compute time of every node run for the frame

    @property
    def compute_seconds(self) -> float:
        return sum(self.seconds.values())


class StreamGraph:
    def __init__(self, cfg: RunCfg, representations: list[str] | None = None, size: tuple[int, int] | None = None):
        """`size` (height, width): every pushed frame must have it; None: whatever comes, per frame."""
        graph = build_graph(cfg)
        names = [n.name for n in graph.nodes]
        chosen = representations or names
        unknown = [r for r in chosen if r not in names]
        if unknown:
            raise ConfigError(f"--representations: unknown {unknown}; the config defines {names}")
        needed = set(chosen)
        for node in reversed(graph.nodes):
            if node.name in needed:
                needed |= set(node.inputs.values())
        self.nodes: list[GraphNode] = [n for n in graph.nodes if n.name in needed]
        for node in self.nodes:
            if node.representation.needs_next_frame:
                raise ConfigError(f"representations.{node.name}: '{node.cfg.type}' needs the next frame, which a "
                                  f"live stream does not have yet; leave it out of streaming graphs")
        require_cuda([n.name for n in self.nodes if n.cfg.device != "cpu"])
        self.chosen = list(chosen)
        self.size = size
        self._ids = itertools.count()
        self._prepared = False
        for node in self.nodes:
            node.representation.setup(node.cfg.device)

    @classmethod
    def from_config(cls, path: str | Path, representations: list[str] | None = None,
                    size: tuple[int, int] | None = None) -> StreamGraph:
        return cls(load_config(path), representations, size)

    def push(self, frame: np.ndarray, frame_id: int | None = None) -> StreamResult:
        frame_id = next(self._ids) if frame_id is None else frame_id
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise VreError(f"frame {frame_id}: expected HxWx3 uint8 RGB, got {frame.dtype} {frame.shape}")
        if self.size is not None and frame.shape[:2] != self.size:
            raise VreError(f"frame {frame_id}: size {frame.shape[1]}x{frame.shape[0]}, expected "
                           f"{self.size[1]}x{self.size[0]}")
        if not self._prepared:
            sample = sample_batch(frame[None])
            for node in self.nodes:
                node.representation.prepare(sample)
            self._prepared = True
        decoded: dict[str, np.ndarray] = {}
        result = StreamResult(frame_id, {}, {})
        for node in self.nodes:
            batch = ComputeBatch(indices=[frame_id], frames=frame[None], next_frames=None, device=node.cfg.device,
                                 inputs={role: decoded[dep] for role, dep in node.inputs.items()})
            start = time.perf_counter()
            stored, decoded[node.name] = run_representation(node.representation, batch,
                                                            node.cfg.output_size or frame.shape[:2])
            result.seconds[node.name] = time.perf_counter() - start
            if node.name in self.chosen:
                result.outputs[node.name] = stored[0]
                result.decoded[node.name] = decoded[node.name][0]
        return result

    def warm_up(self) -> None:
        """Runs one synthetic textured frame of `size` through the graph so the first real frame does not pay
        for JIT loading, first-touch allocations or INT8 calibration (which a black frame would spoil)."""
        if self.size is not None:
            self.push(next(drifting_texture(1, *self.size)), frame_id=-1)

    def render(self, result: StreamResult) -> np.ndarray:
        """One picture of the chosen representations, side by side, at the first one's height."""
        pictures = [node.representation.make_image(result.decoded[node.name][None])[0]
                    for node in self.nodes if node.name in self.chosen]
        height = pictures[0].shape[0]
        return np.concatenate([p if p.shape[0] == height else _fit_height(p, height) for p in pictures], axis=1)

    def close(self) -> None:
        for node in self.nodes:
            node.representation.teardown()

    def __enter__(self) -> StreamGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fit_height(picture: np.ndarray, height: int) -> np.ndarray:
    width = round(picture.shape[1] * height / picture.shape[0])
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)
