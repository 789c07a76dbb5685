"""The wire formats of `vre-fast stream`, and their readers (for servers and clients alike).

Input frames (the TCP source): a 32-byte header, then height*width*3 bytes of RGB.
    magic b"VRF1" | height u32 | width u32 | channels u8 (=3) | 3 reserved bytes | frame_id u64 | sent_ns u64
Results (the "vre" sink format): per frame a header, then one record per array.
    magic b"VRO1" | frame_id u64 | arrays u16 | compute_ns u64
    record: name_len u16 | name | dtype_len u8 | dtype (numpy .str, e.g. "<f2") | ndim u8 | shape u32*ndim | data
Zenoh payloads (zenoh_io.py) are whole VRO1 records: a frame is one with a single HxWx3 "|u1" array, a result
one with a single representation's array.
All integers little-endian. Every size read from the network is checked against limits before use:
a buffer is allocated only for a payload whose header passed the checks, so a reader never holds more
than one frame of at most max_height*max_width*3 bytes.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

import numpy as np

from ..errors import VreError

__all__ = ["FRAME_HEADER", "POLL_SECONDS", "ClientTimeout", "Disconnected", "FrameHeader", "FrameReceiver", "Limits",
           "ProtocolError", "ResultMessage", "decode_frame_record", "decode_record", "encode_frame", "encode_record",
           "encode_result", "parse_frame_header", "read_exact", "read_result"]

POLL_SECONDS = 0.2  # the longest a socket wait blocks before it looks at its deadline and at `stop`

FRAME_MAGIC, RESULT_MAGIC = b"VRF1", b"VRO1"
FRAME_HEADER = struct.Struct("<4sIIB3xQQ")
RESULT_HEADER = struct.Struct("<4sQHQ")
_ALLOWED_DTYPES = {"|u1", "<u2", "<f2", "<f4", "<f8", "<i4", "<i8", "|b1"}


class ProtocolError(ValueError):
    """A malformed or oversized message; the message says what and which frame."""


class Disconnected(EOFError):  # noqa: N818 - it is an EOF, named for what the caller does with it
    """The peer closed the stream; `partial` tells whether it did so in the middle of a message."""

    def __init__(self, partial: bool):
        self.partial = partial
        super().__init__("peer disconnected" + (" in the middle of a message" if partial else ""))


class ClientTimeout(TimeoutError):
    """The peer was too slow: it started no frame within the idle timeout, or did not finish one within the read
    timeout. `partial` tells whether it had sent part of a frame; the message says how much, e.g.
    "sent 1234 of 5678 bytes of frame 3 in 10 s"."""

    def __init__(self, message: str, partial: bool):
        self.partial = partial
        super().__init__(message)


def tcp_address(spec: str, option: str, example_port: int) -> tuple[str, int]:
    """(host, port) of a vre-tcp://HOST:PORT option; the host defaults to loopback."""
    try:
        url = urlsplit(spec)
        port = url.port
    except ValueError as exc:  # a port that is not a number, or out of 0..65535
        raise VreError(f"{option} {spec}: {exc}") from None
    if port is None:
        raise VreError(f"{option} {spec}: give a port, e.g. vre-tcp://127.0.0.1:{example_port}")
    return url.hostname or "127.0.0.1", port


@dataclass(frozen=True)
class Limits:
    max_height: int = 4320
    max_width: int = 7680
    max_arrays: int = 64
    max_name: int = 256
    max_ndim: int = 4

    def check_size(self, size: tuple[int, int]) -> None:
        """Refuses a configured --size (height, width) beyond the frame limit before anything that large is
        allocated."""
        if size[0] > self.max_height or size[1] > self.max_width:
            raise VreError(f"--size {size[1]}x{size[0]} is larger than --max-frame-size {self.max_width}x"
                           f"{self.max_height} (one raw frame would be {size[0] * size[1] * 3 / 2**30:.1f} GiB); "
                           f"raise --max-frame-size if it really is")

    @property
    def max_frame_record(self) -> int:
        """Bytes of the largest VRO1 record that can hold a frame within the limits (a Zenoh frame payload)."""
        return (RESULT_HEADER.size + 2 + self.max_name + 1 + 8 + 1 + 4 * self.max_ndim
                + self.max_height * self.max_width * 3)


@dataclass(frozen=True)
class FrameHeader:
    height: int
    width: int
    frame_id: int
    sent_ns: int

    @property
    def nbytes(self) -> int:
        return self.height * self.width * 3


@dataclass(frozen=True)
class ResultMessage:
    frame_id: int
    compute_ns: int
    arrays: dict[str, np.ndarray]


def read_exact(stream: BinaryIO, n: int, started: bool = False) -> bytes:
    """n bytes or Disconnected (partial if anything of the message had been read)."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise Disconnected(partial=started or got > 0)
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def encode_frame(frame: np.ndarray, frame_id: int, sent_ns: int = 0) -> bytes:
    h, w, c = frame.shape
    return FRAME_HEADER.pack(FRAME_MAGIC, h, w, c, frame_id, sent_ns) + np.ascontiguousarray(frame, np.uint8).tobytes()


def parse_frame_header(data: bytes | bytearray, limits: Limits) -> FrameHeader:
    """The header in `data` (FRAME_HEADER.size bytes), or ProtocolError when a value is bad or beyond `limits`."""
    magic, h, w, c, frame_id, sent_ns = FRAME_HEADER.unpack(data)
    if magic != FRAME_MAGIC:
        raise ProtocolError(f"bad frame header: magic {magic!r}, expected {FRAME_MAGIC!r}")
    if c != 3:
        raise ProtocolError(f"frame {frame_id}: {c} channels; only RGB (3) is accepted")
    if not (0 < h <= limits.max_height and 0 < w <= limits.max_width):
        raise ProtocolError(f"frame {frame_id}: size {w}x{h} is outside 1x1..{limits.max_width}x{limits.max_height}")
    return FrameHeader(h, w, frame_id, sent_ns)


class _Stopped(Exception):
    """`stop` was set while a FrameReceiver waited."""


class FrameReceiver:
    """Reads input frames from one client's socket with deadlines, for a server that must not wait on any client.

    Frames are framed (a FRAME_HEADER, then the RGB bytes) or, with `raw_size` (height, width), raw RGB24 of that
    size back to back (VRE's TCP input), numbered from 0 in the order they arrive.
    A frame whose first byte has arrived must arrive whole (header and payload) within `read_timeout`
    seconds; a client that starts no frame for `idle_timeout` seconds is too slow as well. Both raise
    ClientTimeout. The socket is polled every POLL_SECONDS, so setting `stop` ends a wait promptly.
    The payload is received with recv_into into one bytearray of exactly the frame's size, allocated only
    after the header passed `limits`. `receive()` raises nothing but ProtocolError (a bad header),
    Disconnected (the peer closed), ClientTimeout, or OSError (e.g. a reset connection).
    """

    def __init__(self, conn: socket.socket, limits: Limits, read_timeout: float, idle_timeout: float,
                 stop: threading.Event | None = None, raw_size: tuple[int, int] | None = None):
        self._conn, self._limits, self._stop, self._raw_size = conn, limits, stop, raw_size
        self.read_timeout, self.idle_timeout = read_timeout, idle_timeout
        self._received = 0

    def receive(self) -> tuple[FrameHeader, np.ndarray] | None:
        """The next frame as (header, HxWx3 uint8 array over the received buffer), or None once `stop` is set."""
        try:
            if self._raw_size is None:
                header_bytes = bytearray(FRAME_HEADER.size)
                got, deadline = self._first_bytes(header_bytes)
                self._fill(header_bytes, got, deadline,
                           lambda got: f"sent {got} of the {FRAME_HEADER.size} header bytes of a frame")
                header = parse_frame_header(header_bytes, self._limits)
                payload, got, before = bytearray(header.nbytes), 0, FRAME_HEADER.size
            else:
                header = FrameHeader(*self._raw_size, self._received, 0)
                payload, before = bytearray(header.nbytes), 0
                got, deadline = self._first_bytes(payload)
            self._fill(payload, got, deadline, lambda got: f"sent {before + got} of {before + header.nbytes} bytes "
                                                           f"of frame {header.frame_id}")
        except _Stopped:
            return None
        self._received += 1
        return header, np.frombuffer(payload, np.uint8).reshape(header.height, header.width, 3)

    def _first_bytes(self, buffer: bytearray) -> tuple[int, float]:
        """Waits up to the idle timeout for a frame's first bytes (into `buffer`): (bytes got, the deadline of the
        rest of the frame)."""
        first = self._recv_some(memoryview(buffer), time.monotonic() + self.idle_timeout)
        if first is None:
            raise ClientTimeout(f"sent nothing for {self.idle_timeout:g} s", partial=False)
        if first == 0:
            raise Disconnected(partial=False)
        return first, time.monotonic() + self.read_timeout

    def _fill(self, buffer: bytearray, got: int, deadline: float, progress: Callable[[int], str]) -> None:
        """Receives into buffer[got:] until it is full; `progress(got)` describes a timeout."""
        view = memoryview(buffer)
        while got < len(buffer):
            n = self._recv_some(view[got:], deadline)
            if n is None:
                raise ClientTimeout(f"{progress(got)} in {self.read_timeout:g} s", partial=True)
            if n == 0:
                raise Disconnected(partial=True)
            got += n

    def _recv_some(self, view: memoryview, deadline: float) -> int | None:
        """Bytes received into `view` (0: the peer closed), or None once `deadline` passed."""
        while True:
            if self._stop is not None and self._stop.is_set():
                raise _Stopped
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._conn.settimeout(min(POLL_SECONDS, remaining))
            try:
                return self._conn.recv_into(view)
            except TimeoutError:
                continue


def encode_result(frame_id: int, arrays: dict[str, np.ndarray], compute_ns: int = 0) -> list[bytes | memoryview]:
    """Buffers to write in order (no copy of the array data)."""
    parts: list[bytes | memoryview] = [RESULT_HEADER.pack(RESULT_MAGIC, frame_id, len(arrays), compute_ns)]
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        name_b, dtype_b = name.encode(), arr.dtype.str.encode()
        parts.append(struct.pack(f"<H{len(name_b)}sB{len(dtype_b)}sB{arr.ndim}I", len(name_b), name_b, len(dtype_b),
                                 dtype_b, arr.ndim, *arr.shape))
        parts.append(memoryview(arr).cast("B"))
    return parts


def read_result(stream: BinaryIO, limits: Limits = Limits(), what: str = "result") -> ResultMessage:
    """One VRO1 record; `what` names it in errors ("result", or "frame" for a Zenoh frame)."""
    magic, frame_id, count, compute_ns = RESULT_HEADER.unpack(read_exact(stream, RESULT_HEADER.size))
    if magic != RESULT_MAGIC:
        raise ProtocolError(f"bad {what} header: magic {magic!r}, expected {RESULT_MAGIC!r}")
    if count > limits.max_arrays:
        raise ProtocolError(f"{what} {frame_id}: {count} arrays, more than {limits.max_arrays}")
    arrays = {}
    for _ in range(count):
        (name_len,) = struct.unpack("<H", read_exact(stream, 2, True))
        if name_len > limits.max_name:
            raise ProtocolError(f"{what} {frame_id}: array name of {name_len} bytes")
        name = read_exact(stream, name_len, True).decode()
        (dtype_len,) = struct.unpack("<B", read_exact(stream, 1, True))
        dtype = read_exact(stream, dtype_len, True).decode()
        if dtype not in _ALLOWED_DTYPES:
            raise ProtocolError(f"{what} {frame_id}: array '{name}' has dtype {dtype!r}")
        (ndim,) = struct.unpack("<B", read_exact(stream, 1, True))
        if ndim > limits.max_ndim:
            raise ProtocolError(f"{what} {frame_id}: array '{name}' has {ndim} dimensions")
        shape = struct.unpack(f"<{ndim}I", read_exact(stream, 4 * ndim, True))
        if any(s > max(limits.max_height, limits.max_width) for s in shape):
            raise ProtocolError(f"{what} {frame_id}: array '{name}' has shape {shape}")
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        arrays[name] = np.frombuffer(read_exact(stream, nbytes, True), dtype).reshape(shape)
    return ResultMessage(frame_id, compute_ns, arrays)


def encode_record(frame_id: int, arrays: dict[str, np.ndarray], compute_ns: int = 0) -> bytes:
    """One VRO1 record as one bytes object (a message payload, e.g. Zenoh's)."""
    return b"".join(encode_result(frame_id, arrays, compute_ns))


def decode_record(data: bytes | memoryview, limits: Limits = Limits(), what: str = "result") -> ResultMessage:
    """The VRO1 record that is exactly `data`, or ProtocolError (cut short, trailing bytes, or a bad field). Each
    array is a copy of its bytes in `data`: no read asks for more than what `data` holds, whatever a header says."""
    stream = io.BytesIO(data)
    try:
        message = read_result(stream, limits, what)
    except Disconnected:
        raise ProtocolError(f"{what} record truncated: {len(data)} bytes, its header declares more") from None
    except ProtocolError:
        raise
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} record: a name that is not UTF-8 ({exc.reason})") from None
    except (TypeError, ValueError) as exc:  # e.g. a shape that does not fit the data (a zero-size dtype)
        raise ProtocolError(f"{what} record: {exc}") from None
    if stream.tell() != len(data):
        raise ProtocolError(f"{what} {message.frame_id}: {len(data) - stream.tell()} bytes after the record")
    return message


def decode_frame_record(data: bytes | memoryview, limits: Limits) -> tuple[int, np.ndarray]:
    """(frame id, HxWx3 uint8 image) of a frame sent as a VRO1 record of one array, or ProtocolError. The size is
    checked before anything is parsed, the array's dtype and shape after."""
    if len(data) > limits.max_frame_record:
        raise ProtocolError(f"a frame record of {len(data)} bytes, more than the {limits.max_frame_record} of a "
                            f"{limits.max_width}x{limits.max_height} frame")
    message = decode_record(data, limits, "frame")
    if len(message.arrays) != 1:
        raise ProtocolError(f"frame {message.frame_id}: {len(message.arrays)} arrays, expected one HxWx3 uint8 array")
    ((name, image),) = message.arrays.items()
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ProtocolError(f"frame {message.frame_id}: array '{name}' is {image.dtype} {image.shape}, expected HxWx3 "
                            f"uint8 (RGB)")
    h, w = image.shape[:2]
    if not (0 < h <= limits.max_height and 0 < w <= limits.max_width):
        raise ProtocolError(f"frame {message.frame_id}: size {w}x{h} is outside 1x1..{limits.max_width}x"
                            f"{limits.max_height}")
    return message.frame_id, image
