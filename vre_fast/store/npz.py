"""A standard .npz (a zip holding `arr_0.npy`) or .npy, written straight from the array's memory.

`np.savez` builds the archive through zipfile into a BytesIO (copying the array twice) and stamps it
with the current time. Here the zip headers are packed by hand around the array's own buffer, which
goes to the file with one `writev`: no copy, and the same bytes for the same array (the member's time
is fixed), so resumed and clean runs write identical files. `np.load` reads the result as it reads
np.savez's. Compressed archives deflate the member (raw deflate, as zipfile does) at levels 1-9:
level 1 with ISA-L (python-isal), 2-9 with libdeflate (PyPI `deflate`) at the same level; both write
standard streams that zipfile and np.load inflate.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

__all__ = ["COMPRESS_LEVELS", "DEFAULT_COMPRESS_LEVEL", "npy_parts", "npz_parts"]

COMPRESS_LEVELS = tuple(range(1, 10))  # zlib's levels
DEFAULT_COMPRESS_LEVEL = 6  # np.savez_compressed's (zlib's default): the same size as VRE's compressed npz
try:  # ISA-L: deflate in standard streams at about 1 GB/s a core (level 1), CRC-32 at ~50 GB/s (zlib's: ~5)
    from isal import isal_zlib as _fast_deflate
    _crc32 = _fast_deflate.crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback where it has no wheel
    _fast_deflate, _crc32 = None, zlib.crc32
try:  # libdeflate: zlib's sizes or slightly smaller at about twice its speed, level for level
    from deflate import deflate_compress as _libdeflate
except ImportError:  # pragma: no cover - deflate is a dependency; zlib is the fallback where it has no wheel
    _libdeflate = None
_MEMBER = b"arr_0.npy"
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00, the zip epoch
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LIMIT = 0xFFFFFFFF - (1 << 16)  # sizes that need no zip64 records


def npy_parts(array: np.ndarray) -> list[bytes | memoryview]:
    """The pieces of a .npy file (what np.save writes): its header, then the array's own buffer."""
    head, body = _npy_member(np.ascontiguousarray(array))
    return [head, body]


def _npy_member(array: np.ndarray) -> tuple[bytes, memoryview]:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    return header.getvalue(), memoryview(array.reshape(-1).view(np.uint8))


def npz_parts(array: np.ndarray, compress_level: int | None) -> list[bytes | memoryview] | None:
    """The pieces of the .npz, in order, for `write_parts`; None when the array needs zip64 (over ~4 GiB)
    or is not C-contiguous-able, for the caller to fall back to np.savez."""
    head, body = _npy_member(np.ascontiguousarray(array))
    size = len(head) + body.nbytes
    if size > _LIMIT:
        return None
    crc = _crc32(body, _crc32(head))
    if compress_level is None:
        method, payload = 0, [head, body]
    else:
        method, payload = 8, _deflate(head, body, compress_level)
    stored = sum(len(p) for p in payload)
    local = _LOCAL.pack(0x04034B50, 20, 0, method, _DOS_TIME, _DOS_DATE, crc, stored, size, len(_MEMBER), 0)
    central = _CENTRAL.pack(0x02014B50, 20, 20, 0, method, _DOS_TIME, _DOS_DATE, crc, stored, size, len(_MEMBER),
                            0, 0, 0, 0, 0o100644 << 16, 0)
    offset = len(local) + len(_MEMBER) + stored
    end = _END.pack(0x06054B50, 0, 0, 1, 1, len(central) + len(_MEMBER), offset, 0)
    return [local + _MEMBER, *payload, central + _MEMBER + end]


def _deflate(head: bytes, body: memoryview, level: int) -> list[bytes]:
    """Raw deflate. Level 1 is ISA-L's level 1 (about 10x zlib's speed at level 6, files about 1.5x larger
    on video frames); levels 2-9 are libdeflate's (bench/deflate_levels.py: at level 6 about 2x zlib's speed,
    files no larger than zlib's level 6 on video frames). libdeflate compresses a whole buffer at once (one
    pass, GIL released), so the member is one buffer: header and body joined."""
    if level != 1 and _libdeflate is not None:
        return [_libdeflate(_joined(head, body), level)]
    if level == 1 and _fast_deflate is not None:
        compressor = _fast_deflate.compressobj(1, zlib.DEFLATED, -15)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = [compressor.compress(head)]
    step = 1 << 22  # 4 MiB pieces: the compressor releases the GIL on each
    out += [compressor.compress(body[i:i + step]) for i in range(0, body.nbytes, step)]
    out.append(compressor.flush())
    return out


def _joined(head: bytes, body: memoryview) -> np.ndarray:
    """The member's bytes in one buffer, for compressors that take only one (a copy: cheap beside deflate)."""
    joined = np.empty(len(head) + body.nbytes, np.uint8)
    joined[:len(head)] = np.frombuffer(head, np.uint8)
    joined[len(head):] = np.frombuffer(body, np.uint8)
    return joined
