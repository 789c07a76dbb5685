"""Device -> host copy of a node's output (for storage, a dependant elsewhere, or a picture): queued on the
device's copy stream once the compute stream's work so far is done, into a pooled page-locked buffer of the
output's dtype; the host reads it only after `copied` completes (streams.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..contracts import Operator
from ..devices import Device
from ..streams import Event, HostBuffer, NullStreams, Streams

__all__ = ["DeviceToHost", "Fetched"]


class Fetched(NamedTuple):
    host: np.ndarray  # not to be read before `copied` completes
    buffer: HostBuffer | None  # the pooled buffer `host` lies in, released by its last user; None: no copy made
    copied: Event

    def now(self) -> np.ndarray:
        """The values, waited for and copied out of the pooled buffer (which goes back to the pool)."""
        self.copied.synchronize()
        if self.buffer is None:
            return self.host
        host = self.host.copy()
        self.buffer.release()
        return host


class DeviceToHost(Operator[Any, Fetched]):
    name = "device_to_host"

    def __init__(self, device: Device, streams: Streams | None = None):
        """`streams`: the device's; by default synchronous copies through `device` (NullStreams)."""
        super().__init__()
        self.device = device
        self.streams = NullStreams(device) if streams is None else streams

    def run(self, item: Any) -> Fetched:
        s = self.streams
        s.wait(s.copy, s.record(s.compute))  # the copy starts once the kernels that wrote `item` are done
        host, buffer = s.to_host(item, s.copy)
        return Fetched(host, buffer, s.record(s.copy))

    def bytes_of(self, item: Any, out: Fetched) -> int:
        return int(out.host.nbytes)
