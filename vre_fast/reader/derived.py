"""Representations computed at read time from stored ones, never stored ("derived").

They are declared in the config's YAML shape (`{name: {type, dependencies, parameters, output_dtype}}`,
parsed by the same loader as `vre-fast run`'s config), built from their dependencies' recorded definitions
(collage's rebuild), and computed per item through `NodeExecution`, the one path a node's compute takes
in `vre-fast run` and in a stream, so a derived value equals the one `vre-fast run` would have stored and decoded.

Procedural types only: a learned type would load its weights in every reader process, and a type that
needs frame t+1 (optical flow) has no next frame in a per-frame item. A type without inputs (hsv,
edges_canny) is computed from the video frames, which the reader takes from the dataset's stored `rgb`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._builder import GraphNode, _bind_inputs
from .._cfg import RepresentationCfg
from .._config_loader import parse_config
from .._registry import get_representation_class
from ..collage import representation_from_definition
from ..errors import ConfigError, RepresentationError, VreError
from ..execution.node import NodeExecution, OutputUse
from ..execution.outputs import ChunkOutputs
from ..representation import Representation
from ..toposort import topological_order
from ._stores import StoredRepresentation

__all__ = ["DerivedNode", "DerivedRepresentations"]

_NO_FRAMES = np.empty((1, 0, 0, 3), np.uint8)  # for types with inputs, which never read the frames
_forked_after_openmp = False


def _note_fork() -> None:
    """In a child just forked: numba's GNU OpenMP pool, once started in the parent, aborts the child at the
    first parallel kernel ("fork() called from a process already using GNU OpenMP")."""
    global _forked_after_openmp
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    _forked_after_openmp = bool(parallel is not None and parallel._is_initialized
                                and parallel._threading_layer == "omp")


os.register_at_fork(after_in_child=_note_fork)


@dataclass(frozen=True)
class DerivedNode:
    name: str
    representation: Representation
    inputs: dict[str, str]  # role -> the stored or derived representation feeding it
    from_frames: bool  # no inputs: computed from the video frames (the stored rgb)
    cfg: RepresentationCfg

    @property
    def device(self) -> str:
        return self.cfg.device


class DerivedRepresentations:
    """The derived representations of one reader, in dependency order, with each one's `setup` called once per
    process before its first compute (as the runtime does)."""

    def __init__(self, declared: Mapping[str, Mapping[str, Any]], stored: Mapping[str, StoredRepresentation],
                 frames_source: str | None):
        self.nodes: dict[str, DerivedNode] = {}
        self._set_up: set[str] = set()
        self._lock = threading.Lock()
        if not declared:
            return
        cfgs = parse_config({"representations": dict(declared)}, source="derived").by_name()
        clash = sorted(set(cfgs) & set(stored))
        if clash:
            raise ConfigError(f"derived: {clash} are stored in the dataset already; give the derived ones other names")
        for name in topological_order({n: [d for d in c.dependency_names() if d in cfgs] for n, c in cfgs.items()}):
            self.nodes[name] = _build(cfgs[name], stored, self.nodes, frames_source)

    def __getstate__(self) -> dict[str, Any]:
        return {"nodes": self.nodes}  # a worker process sets its representations up itself

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.nodes, self._set_up, self._lock = state["nodes"], set(), threading.Lock()

    def compute(self, name: str, frame: int, inputs: dict[str, np.ndarray], frames: np.ndarray | None) -> np.ndarray:
        """The decoded value of derived `name` at `frame`, from its inputs' decoded values ({role: (H, W[, C])})
        or, for a type without inputs, the frame's RGB picture."""
        node = self.nodes[name]
        if _forked_after_openmp:
            raise VreError(f"derived representation '{name}' runs numba's OpenMP kernels, which abort in a process "
                           f"forked after its parent used them; give the DataLoader multiprocessing_context="
                           f"'forkserver' (VREDataset.loader does) or 'spawn'")
        with self._lock:
            if name not in self._set_up:
                node.representation.setup(node.device)
                self._set_up.add(name)
        picture = frames if node.from_frames else next(iter(inputs.values()))
        execution = NodeExecution(GraphNode(node.cfg, node.representation, node.inputs), picture.shape[:2],
                                  OutputUse(drawn=True))  # the decoded value is the item's
        outputs = ChunkOutputs()
        for role, dep in node.inputs.items():
            outputs.add_host(dep, frame, inputs[role])
        try:
            result = execution([frame], lambda: _NO_FRAMES if frames is None else frames[None], None, outputs)
        except VreError:
            raise
        except Exception as exc:
            raise RepresentationError(name, frame, exc) from exc
        return result.decoded[0]


def _build(cfg: Any, stored: Mapping[str, StoredRepresentation], built: Mapping[str, DerivedNode],
           frames_source: str | None) -> DerivedNode:
    from ..representations._learned import LearnedRepresentation

    key = f"derived.{cfg.name}"
    cls = get_representation_class(cfg.type)
    if issubclass(cls, LearnedRepresentation) or cls.needs_next_frame:
        why = "it needs frame t+1" if cls.needs_next_frame else "a learned type would load its weights in every reader"
        raise ConfigError(f"{key}.type: '{cfg.type}' cannot be derived at read time: {why}; compute it with "
                          f"`vre-fast run` and read it as a stored representation")
    roles = _bind_inputs(cfg, cls)
    definitions = {name: rep.definition for name, rep in stored.items()}
    definitions.update({name: node.representation.definition() for name, node in built.items()})
    unknown = sorted(set(roles.values()) - set(definitions))
    if unknown:
        raise ConfigError(f"{key}.dependencies: {unknown} neither stored in the dataset ({sorted(stored)}) nor derived "
                          f"before it")
    if not cls.inputs and frames_source is None:
        raise ConfigError(f"{key}: '{cfg.type}' is computed from the video frames, and the dataset stores no rgb")
    definition = {"type": cfg.type, "parameters": cfg.parameters,
                  "inputs": {role: definitions[dep] for role, dep in roles.items()}}
    if cfg.output_dtype is not None:
        definition["output_dtype"] = cfg.output_dtype
    try:
        representation = representation_from_definition(cfg.name, definition)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key}: {exc}") from None
    inputs = dict(roles) if cls.inputs else {}
    return DerivedNode(cfg.name, representation, inputs, from_frames=not cls.inputs, cfg=cfg)
