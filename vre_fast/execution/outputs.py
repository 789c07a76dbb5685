"""The outputs of one chunk's nodes, where their dependants take them from: decoded host arrays per frame,
and device batches kept on the device that computed them. A dependant on that device takes a device batch
as it is (a view of the frames it needs); any other dependant gets host arrays, fetched once from the
device when only a device batch exists."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .devices import Device
from .operators import DeviceToHost, HostToDevice

__all__ = ["ChunkOutputs"]


class ChunkOutputs:
    def __init__(self) -> None:
        self.host: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
        self._device: dict[str, list[tuple[list[int], Any, Device, DeviceToHost]]] = defaultdict(list)

    def add_host(self, name: str, frame: int, decoded: np.ndarray) -> None:
        self.host[name][frame] = decoded

    def add_device(self, name: str, indices: list[int], array: Any, device: Device, fetch: DeviceToHost) -> None:
        """A device batch equal, bit for bit, to the decoded outputs of `indices` (see EncodeOperator)."""
        self._device[name].append((list(indices), array, device, fetch))

    def gather(self, name: str, indices: list[int], device: Device, put: HostToDevice) -> Any:
        """The batch of `name`'s outputs for `indices`, on `device`: a view of a device batch there if one
        holds them consecutively, else stacked on the host (and copied over for a device)."""
        if device.kind != "cpu":
            for held, array, where, _ in self._device.get(name, ()):
                if where.name == device.name and indices[0] in held:
                    start = held.index(indices[0])
                    if held[start:start + len(indices)] == indices:
                        return array[start:start + len(indices)]
        batch = np.stack([self._host_frame(name, f) for f in indices])
        return batch if device.kind == "cpu" else put(batch).array  # pageable: safe to drop once queued

    def _host_frame(self, name: str, frame: int) -> np.ndarray:
        host = self.host[name]
        if frame not in host:
            held, array, _, fetch = next(p for p in self._device[name] if frame in p[0])
            for f, value in zip(held, fetch(array).now()):
                host[f] = value
        return host[frame]
