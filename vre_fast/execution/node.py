"""One node on one batch, the same for a stored run and a live stream: the runtime places the batch where the
node computes, computes, copies the output to the host only when storage, a picture or a dependant elsewhere
needs it, resizes and encodes it there, and keeps the device output for dependants on the same device."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._builder import GraphNode
from ..errors import VreError
from ..representation import ComputeBatch, Representation
from .devices import HOST, Device, device_named, is_device_array
from .operators import ComputeOperator, DeviceToHost, EncodeOperator, HostToDevice
from .outputs import ChunkOutputs

__all__ = ["NodeExecution", "NodeResult", "OutputUse", "placement", "prepare_node", "setup_node"]


def placement(node: GraphNode) -> Device:
    """Where a node computes: its configured device if its compute supports that device's kind, else the host
    (a learned expert's backend then moves the arrays itself)."""
    device = device_named(node.cfg.device)
    return device if device.kind in node.representation.compute_backends else HOST


def setup_node(node: GraphNode) -> float:
    """The representation's `setup` on its device; the seconds it took."""
    return _setting_up(node, lambda: node.representation.setup(node.cfg.device))


def prepare_node(node: GraphNode, sample: Callable[[], ComputeBatch]) -> float:
    """`prepare` with the input's sample, built only for representations that use it; the seconds."""
    rep = node.representation
    if type(rep).prepare is Representation.prepare:
        return 0.0
    return _setting_up(node, lambda: rep.prepare(sample()))


def _setting_up(node: GraphNode, step: Callable[[], None]) -> float:
    """A failure while setting up (missing weights, an INT8 model refused) is not a frame's failure: it is
    raised as a VreError naming the node."""
    start = time.perf_counter()
    try:
        step()
    except VreError:
        raise
    except Exception as exc:
        raise VreError(f"representation '{node.name}' could not be set up: {type(exc).__name__}: {exc}") from exc
    return time.perf_counter() - start


@dataclass(frozen=True)
class OutputUse:
    """What a node's output is for in this run; it decides which copies and decodes the runtime makes."""

    stored: bool = False  # written to disk (a stream: handed back)
    drawn: bool = False  # pictures are made of its decoded value (a stream: the decoded value is handed back)
    dependants_on_its_device: bool = False  # computing dependants placed on the node's own device
    dependants_elsewhere: bool = False  # computing dependants on another device or the host

    @property
    def dependants(self) -> bool:
        return self.dependants_on_its_device or self.dependants_elsewhere


@dataclass
class NodeResult:
    indices: list[int]
    stored: np.ndarray | None  # (B, H, W[, C]) encoded on the host; None when nothing needed it there
    decoded: np.ndarray | None  # what dependants and pictures see; None when none of them needs it
    seconds: float


class NodeExecution:
    """A node bound to its device and to what its output is for (`use`): the output reaches the host when it
    is stored, drawn or read by a dependant elsewhere; it is decoded when drawn or read by a dependant; a
    device output is shared, as it is, with dependants on its device."""

    def __init__(self, node: GraphNode, output_size: tuple[int, int], use: OutputUse):
        self.node, self.output_size, self.use = node, output_size, use
        self.device = placement(node)
        self.host_output = use.stored or use.drawn or use.dependants_elsewhere
        self.share_on_device = use.dependants_on_its_device and self.device is not HOST
        self.put = HostToDevice(self.device)
        self.compute = ComputeOperator(node.representation)
        self.fetch = DeviceToHost(self.device)
        self.encode = EncodeOperator(node.representation, output_size, decode=use.drawn or use.dependants)

    @property
    def representation(self) -> Representation:
        return self.node.representation

    def setup(self) -> float:
        return setup_node(self.node)

    def prepare(self, sample: Callable[[], ComputeBatch]) -> float:
        return prepare_node(self.node, sample)

    def __call__(self, indices: list[int], frames: Callable[[], Any], next_frames: Callable[[], Any] | None,
                 outputs: ChunkOutputs) -> NodeResult:
        """Computes `indices`; `frames` / `next_frames` give the batch's frames on this node's device when
        asked; dependency outputs come from `outputs`, and this node's are added there."""
        start = time.perf_counter()
        rep = self.representation
        inputs = {role: outputs.gather(dep, indices, self.device, self.put) for role, dep in self.node.inputs.items()}
        raw = self.compute(ComputeBatch(indices, frames, next_frames if rep.needs_next_frame else None, inputs))
        on_device = is_device_array(raw)
        if on_device and self.device.kind == "cpu":
            raise ValueError(f"compute returned a device array on the host ('{self.node.name}' runs on the cpu)")
        shared = (on_device and self.share_on_device
                  and self.encode.exact_on_device(raw.dtype, tuple(raw.shape[1:3])))
        stored = decoded = None
        if self.host_output or not shared:
            host = self.fetch(raw) if on_device else np.asarray(raw)
            stored, decoded = self.encode(host)
            if self.use.dependants:
                for i, f in enumerate(indices):
                    outputs.add_host(self.node.name, f, decoded[i])
        if shared:
            outputs.add_device(self.node.name, indices, raw, self.device, self.fetch)
        return NodeResult(list(indices), stored, decoded, time.perf_counter() - start)
