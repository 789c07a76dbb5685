"""Host -> device copy of a batch's frames or a dependency's outputs, for a node computing on a device: queued
on the device's copy stream, with the compute stream made to wait for it (streams.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..contracts import Operator
from ..devices import Device
from ..streams import Event, NullStreams, Streams

__all__ = ["HostToDevice", "Placed"]


class Placed(NamedTuple):
    array: Any  # on the device
    copied: Event  # completes once the copy has read the host array (the host buffer may then be reused)


class HostToDevice(Operator[np.ndarray, Placed]):
    name = "host_to_device"

    def __init__(self, device: Device, streams: Streams | None = None):
        """`streams`: the device's; by default synchronous copies through `device` (NullStreams)."""
        super().__init__()
        self.device = device
        self.streams = NullStreams(device) if streams is None else streams

    def run(self, item: np.ndarray) -> Placed:
        s = self.streams
        array = s.to_device(item, s.copy)
        copied = s.record(s.copy)
        s.wait(s.compute, copied)  # the node's kernels, launched on compute after this, see the whole copy
        return Placed(array, copied)
