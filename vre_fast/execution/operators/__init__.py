"""The operators a frame batch goes through, one per file: decode, host->device, compute, device->host, encode,
write. Each is an `Operator` (contracts.py): called with its input, it reports time, frames and bytes."""

from .compute import ComputeOperator
from .decode import DecodeOperator, DecodeStage
from .device_to_host import DeviceToHost
from .encode import EncodeOperator
from .host_to_device import HostToDevice
from .write import WriteJob, WriteOperator, WritePool

__all__ = ["ComputeOperator", "DecodeOperator", "DecodeStage", "DeviceToHost", "EncodeOperator", "HostToDevice",
           "WriteJob", "WriteOperator", "WritePool"]
