"""Device -> host copy of a node's output: for storage, for a dependant elsewhere, or for a picture."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contracts import Operator
from ..devices import Device

__all__ = ["DeviceToHost"]


class DeviceToHost(Operator[Any, np.ndarray]):
    name = "device_to_host"

    def __init__(self, device: Device):
        super().__init__()
        self.device = device

    def run(self, item: Any) -> np.ndarray:
        return self.device.fetch(item)
