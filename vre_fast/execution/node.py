"""One node on one batch, the same for a stored run and a live stream: the runtime places the batch where the
node computes, computes, copies the output to the host only when storage, a picture or a dependant elsewhere
needs it, resizes and encodes it there, and keeps the device output for dependants on the same device.

On a CUDA device the copies and kernels are queued on the device's streams (streams.py): `launch` queues the
batch and its copy back, and returns without waiting; `Launched.finish` waits for the copy back and encodes.
The batch executor finishes a node whose outputs no dependant reads at the end of the chunk, so the device
computes the next nodes while the host waits for, encodes and writes that one's outputs."""

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
from .operators.device_to_host import Fetched
from .outputs import ChunkOutputs
from .streams import HostBuffer, Streams, streams_for

__all__ = ["Launched", "NodeExecution", "NodeResult", "OutputUse", "placement", "prepare_node", "setup_node"]


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
    # the pooled page-locked buffer `stored` / `decoded` may be views of (a CUDA output copied back), held
    # for the result: released by its last user (a write job holding a view retains it); None: no buffer
    buffer: HostBuffer | None = None

    def detach(self) -> NodeResult:
        """The result with arrays of its own, the buffer given back (for callers that keep results)."""
        if self.buffer is None:
            return self
        own = [None if a is None else (a.copy() if self.buffer.holds(a) else a) for a in (self.stored, self.decoded)]
        self.buffer.release()
        return NodeResult(self.indices, own[0], own[1], self.seconds)


@dataclass
class Launched:
    """A batch computed (on a device: queued) and its copy to the host queued when one is needed."""

    execution: NodeExecution
    indices: list[int]
    raw: Any
    encoded: bool  # whether the output is wanted on the host (stored, drawn, read there): else it stays put
    fetched: Fetched | None  # its copy back from the device; None when it was computed on the host
    seconds: float  # spent launching

    def finish(self, outputs: ChunkOutputs) -> NodeResult:
        """Waits for the copy back, encodes on the host and adds the decoded outputs to `outputs` for
        dependants; the result holds the copy's buffer (see `NodeResult.buffer`)."""
        start = time.perf_counter()
        ex, stored, decoded, buffer = self.execution, None, None, None
        if self.encoded:
            if self.fetched is not None:
                self.fetched.copied.synchronize()  # never read (encoded, written) before the copy is done
                host, buffer = self.fetched.host, self.fetched.buffer
            else:
                host = np.asarray(self.raw)
            try:
                stored, decoded = ex.encode(host)
            except BaseException:
                if buffer is not None:
                    buffer.release()
                raise
            if ex.use.dependants:  # read later in the chunk: never a view of a buffer the pool may hand out again
                held = decoded.copy() if buffer is not None and buffer.holds(decoded) else decoded
                for i, f in enumerate(self.indices):
                    outputs.add_host(ex.node.name, f, held[i])
        return NodeResult(list(self.indices), stored, decoded, self.seconds + time.perf_counter() - start, buffer)


class NodeExecution:
    """A node bound to its device and to what its output is for (`use`): the output reaches the host when it
    is stored, drawn or read by a dependant elsewhere; it is decoded when drawn or read by a dependant; a
    device output is shared, as it is, with dependants on its device."""

    def __init__(self, node: GraphNode, output_size: tuple[int, int], use: OutputUse,
                 streams: Callable[[Device], Streams] = streams_for):
        """`streams`: the device -> its streams (the null streams on the host; tests pass a recording one)."""
        self.node, self.output_size, self.use = node, output_size, use
        self.device = placement(node)
        self.streams = streams(self.device)
        self.host_output = use.stored or use.drawn or use.dependants_elsewhere
        self.share_on_device = use.dependants_on_its_device and self.device is not HOST
        self.put = HostToDevice(self.device, self.streams)
        self.compute = ComputeOperator(node.representation)
        self.fetch = DeviceToHost(self.device, self.streams)
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
        """Computes `indices` and waits for the result (`launch`, then `finish`), its arrays its own."""
        return self.launch(indices, frames, next_frames, outputs).finish(outputs).detach()

    def launch(self, indices: list[int], frames: Callable[[], Any], next_frames: Callable[[], Any] | None,
               outputs: ChunkOutputs) -> Launched:
        """Computes `indices` on this node's device's compute stream, and queues the copy back to the host
        when one is needed; `frames` / `next_frames` give the batch's frames on the device when asked;
        dependency outputs come from `outputs`, and a device output shared with dependants there is added."""
        start = time.perf_counter()
        rep, s = self.representation, self.streams
        inputs = {role: outputs.gather(dep, indices, self.device, self.put) for role, dep in self.node.inputs.items()}
        with s.launching(s.compute):
            raw = self.compute(ComputeBatch(indices, frames, next_frames if rep.needs_next_frame else None, inputs))
        on_device = is_device_array(raw)
        if on_device and self.device.kind == "cpu":
            raise ValueError(f"compute returned a device array on the host ('{self.node.name}' runs on the cpu)")
        shared = (on_device and self.share_on_device
                  and self.encode.exact_on_device(raw.dtype, tuple(raw.shape[1:3])))
        encoded = self.host_output or not shared
        fetched = self.fetch(raw) if on_device and encoded else None
        if shared:  # produced on the compute stream its dependants launch on: stream order makes it safe
            outputs.add_device(self.node.name, indices, raw, self.device, self.fetch)
        return Launched(self, list(indices), raw, encoded, fetched, time.perf_counter() - start)
