"""Streams and events: how the runtime orders copies and compute on a device without waiting on the host.

Per device there are two streams, `copy` and `compute`, and the runtime keeps these rules (the executor and
`NodeExecution` are their only users; tests/test_gpu_overlap.py checks them with a recording stand-in):

1. host -> device: a batch is copied on `copy`, an event is recorded after the copy, and `compute` waits on
   that event before the node's kernels are launched on it. The host does not wait for the copy (from
   pageable memory the driver stages the source before the call returns; from pinned memory it does not).
2. a frame slot of the (pinned) frame ring goes back to the decoder only once the events of the copies that
   read it have completed (`FrameSlot.after`). A copy from page-locked memory is asynchronous: the call
   returns when the copy is queued, and the DMA engine reads the host buffer later. Giving the slot back on
   return would let the decoder overwrite frames the device has not read yet, and the device would compute on
   a mix of two chunks. Nothing on the CPU, nor numba's simulator, nor a copy from pageable memory (staged
   synchronously by the driver) would show the bug; only a real GPU with a pinned ring (the ring is pinned
   when torch sees CUDA, `can_pin_memory`), and then only when decode outruns the copy.
3. device -> host: an event is recorded on `compute` after the node, `copy` waits on it, and the output is
   copied into a page-locked host buffer of the output's dtype (the storage dtype for the CUDA kernels, which
   compute in it; a pool per device, a buffer reused once its last write is done); an event is recorded after
   that copy, and the output is encoded and handed to the writers only once it has completed (a write of a
   buffer still being filled would store whatever it held before). Decoded values that dependants read
   later in the chunk are copied out of the buffer first: the pool may hand it to the next copy back.
4. outputs kept on the device for dependants on the same device (`ChunkOutputs.add_device`) are produced on
   that device's `compute` stream and read by the dependants' kernels on the same stream: stream order alone
   makes them safe, no event is needed.

`NullStreams` (the host, every CPU run) keeps the same calls with nothing behind them: streams are tokens,
events are complete when recorded, "copies" hand the array over as it is (or go through the device,
synchronously, for a device without streams). So CPU runs take the one code
path a CUDA run takes, byte for byte the outputs they had before, and the ordering logic is tested on CPU.

`CudaStreams` is numba.cuda (imported on the first CUDA run only): numba's device arrays are what the
kernels take and what `CudaDevice.put` made before. Its streams are ordinary (blocking) streams: anything
launched on the legacy default stream, such as a kernel's own `cuda.to_device` of a host argument, stays
ordered against them, at the cost of overlap with that work only. Learned nodes (torch, ONNX Runtime) are
placed on the host by the runtime (`placement`), so they get host arrays and their backend copies on its
own stream (torch's current stream, the legacy default stream unless set). Both use the device's primary
CUDA context, so numba and torch share one context; to launch numba kernels on torch's stream instead,
`cuda.external_stream(torch.cuda.current_stream().cuda_stream)` would be the compute stream here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from .devices import HOST, CudaDevice, Device, is_device_array
from .shared import SharedUse

__all__ = ["CudaStreams", "DONE", "Event", "HostBuffer", "NullStreams", "Streams", "streams_for"]


class Event(Protocol):
    def synchronize(self) -> None:
        """Blocks the host until the work queued before the event's record has completed."""


class Streams(Protocol):
    """One device's copy and compute streams and the operations the runtime orders with them."""

    copy: Any
    compute: Any

    def record(self, stream: Any) -> Event:
        """An event that completes once the work queued on `stream` so far has."""

    def wait(self, stream: Any, event: Event) -> None:
        """Work queued on `stream` from now on starts only after `event` has completed (the host goes on)."""

    def to_device(self, host: np.ndarray, stream: Any) -> Any:
        """A device copy of `host`, queued on `stream`."""

    def to_host(self, array: Any, stream: Any) -> tuple[np.ndarray, HostBuffer | None]:
        """`array` on the host, copied on `stream` into a pooled host buffer (returned, to be released when
        its last user is done; None when no copy was made)."""

    @contextmanager
    def launching(self, stream: Any) -> Iterator[None]:
        """Kernels launched by this thread inside the block go on `stream`."""


class _Done:
    """An event that has always completed: the host's."""

    def synchronize(self) -> None:
        pass


DONE = _Done()


class NullStreams:
    """No streams, every event complete: copies go through `device` synchronously (the host's hand arrays
    over as they are)."""

    copy = compute = None

    def __init__(self, device: Device = HOST):
        self.device = device

    def record(self, stream: Any) -> Event:
        return DONE

    def wait(self, stream: Any, event: Event) -> None:
        pass

    def to_device(self, host: np.ndarray, stream: Any) -> Any:
        return self.device.put(host)

    def to_host(self, array: Any, stream: Any) -> tuple[np.ndarray, HostBuffer | None]:
        return (self.device.fetch(array) if is_device_array(array) else np.asarray(array)), None

    @contextmanager
    def launching(self, stream: Any) -> Iterator[None]:
        yield


class HostBuffer(SharedUse):
    """One page-locked output buffer of a pool: in use from `to_host` until its last user lets go (the
    executor, then each write job holding a view of it), then back in the pool for the next batch of the
    same shape and dtype. The same retain / release / holds contract as a `FrameSlot`."""

    def __init__(self, array: np.ndarray, pool: _HostBufferPool):
        super().__init__(users=1)
        self.array, self._pool = array, pool

    def holds(self, array: np.ndarray) -> bool:
        return np.may_share_memory(array, self.array)

    def _last_released(self) -> None:
        self._pool.give_back(self)


class _HostBufferPool:
    """Page-locked buffers allocated once per (shape, dtype) and reused: pinning is slow (a driver call that
    maps the pages), and the writer queue's depth bounds how many are in use at once."""

    def __init__(self, allocate: Any):
        self._allocate = allocate
        self._free: dict[tuple[tuple[int, ...], str], list[HostBuffer]] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> HostBuffer:
        with self._lock:
            free = self._free.get((tuple(shape), np.dtype(dtype).str))
            if free:
                buffer = free.pop()
                buffer._users = 1
                return buffer
        return HostBuffer(self._allocate(tuple(shape), np.dtype(dtype)), self)

    def give_back(self, buffer: HostBuffer) -> None:
        with self._lock:
            self._free.setdefault((buffer.array.shape, buffer.array.dtype.str), []).append(buffer)


class CudaStreams:
    """numba.cuda streams and events on the thread's current CUDA context (the primary context of the device
    numba selected; numba and torch share it). Like `CudaDevice.put`, it does not select the N of "cuda:N":
    every CUDA node of a run computes on the current device."""

    def __init__(self) -> None:
        from numba import config, cuda

        self._cuda = cuda
        # events for ordering only: no timestamps (cheaper); the simulator's Event takes no arguments
        self._event = cuda.event if config.ENABLE_CUDASIM else lambda: cuda.event(timing=False)
        self.copy, self.compute = cuda.stream(), cuda.stream()
        self._buffers = _HostBufferPool(lambda shape, dtype: cuda.pinned_array(shape, dtype))

    def record(self, stream: Any) -> Event:
        event = self._event()
        event.record(stream)
        return event

    def wait(self, stream: Any, event: Event) -> None:
        event.wait(stream)  # type: ignore[attr-defined]

    def to_device(self, host: np.ndarray, stream: Any) -> Any:
        return self._cuda.to_device(np.ascontiguousarray(host), stream=stream)

    def to_host(self, array: Any, stream: Any) -> tuple[np.ndarray, HostBuffer | None]:
        if not hasattr(array, "copy_to_host"):  # CuPy, torch on CUDA: seen through numba, no copy
            array = self._cuda.as_cuda_array(array)
        buffer = self._buffers.take(tuple(array.shape), array.dtype)
        array.copy_to_host(buffer.array, stream=stream)
        return buffer.array, buffer

    @contextmanager
    def launching(self, stream: Any) -> Iterator[None]:
        from ..kernels._cuda import launch_stream

        with launch_stream(stream):
            yield


_NULL = NullStreams()
_cuda_streams: dict[str, CudaStreams] = {}
_lock = threading.Lock()


def streams_for(device: Device) -> Streams:
    """The device's streams, made once per process and device (a CUDA stream is cheap to keep, not to make
    per run); null streams (synchronous copies) for the host and any other device."""
    if not isinstance(device, CudaDevice):
        return _NULL if device is HOST else NullStreams(device)
    with _lock:
        if device.name not in _cuda_streams:
            _cuda_streams[device.name] = CudaStreams()
        return _cuda_streams[device.name]
