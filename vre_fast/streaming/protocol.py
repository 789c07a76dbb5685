"""The wire formats of `vre-fast stream`, and their readers (for servers and clients alike).

Input frames (the TCP source): a 32-byte header, then height*width*3 bytes of RGB.
    magic b"VRF1" | height u32 | width u32 | channels u8 (=3) | 3 reserved bytes | frame_id u64 | sent_ns u64
Results (the "vre" sink format): per frame a header, then one record per array.
    magic b"VRO1" | frame_id u64 | arrays u16 | compute_ns u64
    record: name_len u16 | name | dtype_len u8 | dtype (numpy .str, e.g. "<f2") | ndim u8 | shape u32*ndim | data
All integers little-endian. Every size read from the network is checked against limits before use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

__all__ = ["FRAME_HEADER", "Disconnected", "FrameHeader", "Limits", "ProtocolError", "ResultMessage", "encode_frame",
           "encode_result", "read_exact", "read_frame", "read_frame_header", "read_result"]

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


@dataclass(frozen=True)
class Limits:
    max_height: int = 4320
    max_width: int = 7680
    max_arrays: int = 64
    max_name: int = 256
    max_ndim: int = 4


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


def read_frame_header(stream: BinaryIO, limits: Limits) -> FrameHeader:
    magic, h, w, c, frame_id, sent_ns = FRAME_HEADER.unpack(read_exact(stream, FRAME_HEADER.size))
    if magic != FRAME_MAGIC:
        raise ProtocolError(f"bad frame header: magic {magic!r}, expected {FRAME_MAGIC!r}")
    if c != 3:
        raise ProtocolError(f"frame {frame_id}: {c} channels; only RGB (3) is accepted")
    if not (0 < h <= limits.max_height and 0 < w <= limits.max_width):
        raise ProtocolError(f"frame {frame_id}: size {w}x{h} is outside 1x1..{limits.max_width}x{limits.max_height}")
    return FrameHeader(h, w, frame_id, sent_ns)


def read_frame(stream: BinaryIO, limits: Limits) -> tuple[FrameHeader, np.ndarray]:
    header = read_frame_header(stream, limits)
    data = read_exact(stream, header.nbytes, started=True)
    return header, np.frombuffer(data, np.uint8).reshape(header.height, header.width, 3)


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


def read_result(stream: BinaryIO, limits: Limits = Limits()) -> ResultMessage:
    magic, frame_id, count, compute_ns = RESULT_HEADER.unpack(read_exact(stream, RESULT_HEADER.size))
    if magic != RESULT_MAGIC:
        raise ProtocolError(f"bad result header: magic {magic!r}, expected {RESULT_MAGIC!r}")
    if count > limits.max_arrays:
        raise ProtocolError(f"result {frame_id}: {count} arrays, more than {limits.max_arrays}")
    arrays = {}
    for _ in range(count):
        (name_len,) = struct.unpack("<H", read_exact(stream, 2, True))
        if name_len > limits.max_name:
            raise ProtocolError(f"result {frame_id}: array name of {name_len} bytes")
        name = read_exact(stream, name_len, True).decode()
        (dtype_len,) = struct.unpack("<B", read_exact(stream, 1, True))
        dtype = read_exact(stream, dtype_len, True).decode()
        if dtype not in _ALLOWED_DTYPES:
            raise ProtocolError(f"result {frame_id}: array '{name}' has dtype {dtype!r}")
        (ndim,) = struct.unpack("<B", read_exact(stream, 1, True))
        if ndim > limits.max_ndim:
            raise ProtocolError(f"result {frame_id}: array '{name}' has {ndim} dimensions")
        shape = struct.unpack(f"<{ndim}I", read_exact(stream, 4 * ndim, True))
        if any(s > max(limits.max_height, limits.max_width) for s in shape):
            raise ProtocolError(f"result {frame_id}: array '{name}' has shape {shape}")
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        arrays[name] = np.frombuffer(read_exact(stream, nbytes, True), dtype).reshape(shape)
    return ResultMessage(frame_id, compute_ns, arrays)
