"""StreamGraph: the representation graph, one frame at a time, in memory (the embedding API).

    with StreamGraph.from_config("configs/procedural.yaml", representations=["hsv"]) as graph:
        result = graph.push(frame)          # HxWx3 uint8 RGB
        result.outputs["hsv"], result.seconds["hsv"]

It drives the batch engine's plan and node execution with a one-frame source and no writers (the stream
runtime adds the latest-frame policy in front): outputs are the arrays a `vre-fast run` would store for the
same frame (`encode`d), and nodes that the chosen representations do not need are neither set up nor computed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .._builder import GraphNode, build_graph
from .._cfg import RunCfg
from .._config_loader import load_config
from ..backends import require_cuda
from ..errors import ConfigError, VreError
from ..execution import NodeExecution, make_plan, placement
from ..execution.node import OutputUse, setup_node
from ..execution.outputs import ChunkOutputs
from ..representation import sample_batch
from ..sources.synthetic import drifting_texture

if TYPE_CHECKING:
    from .sources import SourceFrame

__all__ = ["StreamGraph", "StreamResult"]


@dataclass
class StreamResult:
    frame_id: int
    outputs: dict[str, np.ndarray]  # chosen representation -> stored (encoded) array
    decoded: dict[str, np.ndarray]  # chosen representation -> decoded array (what make_image draws)
    seconds: dict[str, float] = field(default_factory=dict)  # compute time of every node run for the frame
    origin: SourceFrame | None = None  # set by the stream runtime: when the frame arrived, where to reply

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
        plan = make_plan(graph, [0], {}, outputs=set(chosen))
        self.nodes = [n for n in graph.nodes if plan.compute[n.name]]
        for node in self.nodes:
            if node.representation.needs_next_frame:
                raise ConfigError(f"representations.{node.name}: '{node.cfg.type}' needs the next frame, which a "
                                  f"live stream does not have yet; leave it out of streaming graphs")
        require_cuda([n.name for n in self.nodes if n.cfg.device != "cpu"])
        self.chosen = list(chosen)
        self.size = size
        self._ids = itertools.count()
        self._executions: dict[tuple[int, int], list[NodeExecution]] = {}  # per frame size
        self._prepared = False
        self._set_up: list[GraphNode] = []
        try:
            for node in self.nodes:
                setup_node(node)
                self._set_up.append(node)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(cls, path: str | Path, representations: list[str] | None = None,
                    size: tuple[int, int] | None = None) -> StreamGraph:
        return cls(load_config(path), representations, size)

    def _executions_for(self, frame_size: tuple[int, int]) -> list[NodeExecution]:
        """The node executions for frames of `frame_size` (output sizes default to the frame's)."""
        if frame_size not in self._executions:
            self._executions[frame_size] = [NodeExecution(node, node.cfg.output_size or frame_size, self._use(node))
                                            for node in self.nodes]
        return self._executions[frame_size]

    def _use(self, node: GraphNode) -> OutputUse:
        """Chosen nodes are handed back (stored and decoded values); the others only feed their dependants."""
        device = placement(node).name
        dependants = [placement(d).name for d in self.nodes if node.name in d.inputs.values()]
        chosen = node.name in self.chosen
        return OutputUse(stored=chosen, drawn=chosen, dependants_on_its_device=device in dependants,
                         dependants_elsewhere=any(d != device for d in dependants))

    def push(self, frame: np.ndarray, frame_id: int | None = None) -> StreamResult:
        frame_id = next(self._ids) if frame_id is None else frame_id
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise VreError(f"frame {frame_id}: expected HxWx3 uint8 RGB, got {frame.dtype} {frame.shape}")
        if self.size is not None and frame.shape[:2] != self.size:
            raise VreError(f"frame {frame_id}: size {frame.shape[1]}x{frame.shape[0]}, expected "
                           f"{self.size[1]}x{self.size[0]}")
        executions = self._executions_for(frame.shape[:2])
        if not self._prepared:
            sample = sample_batch(frame[None])
            for execution in executions:
                execution.prepare(lambda: sample)
            self._prepared = True
        outputs, result = ChunkOutputs(), StreamResult(frame_id, {}, {})
        frames_on: dict[str, object] = {}
        for execution in executions:
            def frames(execution: NodeExecution = execution) -> object:
                where = execution.device.name
                if where not in frames_on:
                    frames_on[where] = execution.put(frame[None]).array
                return frames_on[where]

            done = execution([frame_id], frames, None, outputs)
            name = execution.node.name
            result.seconds[name] = done.seconds
            if name in self.chosen:
                result.outputs[name], result.decoded[name] = done.stored[0], done.decoded[0]
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
        for node in self._set_up:
            node.representation.teardown()
        self._set_up = []

    def __enter__(self) -> StreamGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fit_height(picture: np.ndarray, height: int) -> np.ndarray:
    width = round(picture.shape[1] * height / picture.shape[0])
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)
