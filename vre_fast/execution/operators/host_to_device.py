"""Host -> device copy of a batch's frames or a dependency's outputs, for a node computing on a device."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contracts import Operator
from ..devices import Device

__all__ = ["HostToDevice"]


class HostToDevice(Operator[np.ndarray, Any]):
    name = "host_to_device"

    def __init__(self, device: Device):
        super().__init__()
        self.device = device

    def run(self, item: np.ndarray) -> Any:
        return self.device.put(item)
