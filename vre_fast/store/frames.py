"""One representation's per-frame files: npz/<frame>.npz (key arr_0) or npy/<frame>.npy, and
png|jpg/<frame>.<ext>."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from ..errors import StoreError
from .atomic import atomic_write
from .npz import npy_parts, npz_parts

__all__ = ["FrameFiles"]



class FrameFiles:
    """`durable`: fsync every file (and its directory) for power-loss safety; without it a write is still
    atomic and safe against a killed process (see `atomic_write`). `direct`: large files past the page cache."""

    def __init__(self, directory: Path, durable: bool = False, direct: bool = False):
        self.directory = directory
        self.durable = durable
        self.direct = direct

    def path(self, fmt: str, frame: int) -> Path:
        return self.directory / fmt / f"{frame}.{fmt}"

    def make_dirs(self, formats: tuple[str, ...]) -> None:
        for fmt in formats:
            (self.directory / fmt).mkdir(parents=True, exist_ok=True)

    def write(self, frame: int, stored: np.ndarray, binary: tuple[str, ...], image: dict[str, np.ndarray] | None,
              compress: int = 0, jpeg_quality: int = 75) -> None:
        """Writes `stored` in each of the `binary` formats (npz deflated at level `compress`, 0: stored) and the
        image formats present in `image` ({fmt: HxWx3})."""
        if "npz" in binary:
            parts = npz_parts(stored, compress or None)
            if parts is None:  # over 4 GiB: zipfile's zip64
                buf = io.BytesIO()
                (np.savez_compressed if compress else np.savez)(buf, arr_0=stored)
                parts = [buf.getbuffer()]
            atomic_write(self.path("npz", frame), parts, self.durable, self.direct)
        if "npy" in binary:
            atomic_write(self.path("npy", frame), npy_parts(stored), self.durable, self.direct)
        for fmt, picture in (image or {}).items():
            atomic_write(self.path(fmt, frame), [self._encode(frame, fmt, picture, jpeg_quality)], self.durable,
                         self.direct)

    def _encode(self, frame: int, fmt: str, picture: np.ndarray, jpeg_quality: int) -> bytes | memoryview:
        """JPEG through libjpeg-turbo straight from RGB (simplejpeg: no BGR copy, about 1.6x OpenCV's encode at
        the same size and error, 4:2:0 as OpenCV's and Pillow's defaults); PNG through OpenCV."""
        if fmt == "jpg":
            return simplejpeg.encode_jpeg(np.ascontiguousarray(picture), jpeg_quality, "RGB", "420")
        ok, encoded = cv2.imencode(f".{fmt}", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise StoreError(f"cannot encode frame {frame} of {self.directory.name} as {fmt}")
        return encoded.data

    def read(self, frame: int) -> np.ndarray:
        """The stored array of `frame`, from its npz or else its npy."""
        path = self.path("npz", frame)
        if not path.exists() and self.path("npy", frame).exists():
            path = self.path("npy", frame)
        try:
            if path.suffix == ".npy":
                return np.load(path, allow_pickle=False)
            with np.load(path, allow_pickle=False) as data:
                return data["arr_0"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise StoreError(f"cannot read {path}: {type(exc).__name__}: {exc}; run `vre-fast metadata rebuild "
                             f"{self.directory.parent}` to leave unreadable files out, then run again to recompute "
                             f"them") from None

    def stored_frames(self) -> set[int]:
        """Frames with a stored array (npz or npy)."""
        return set(self.frames_on_disk("npz")) | set(self.frames_on_disk("npy"))

    def frames_on_disk(self, fmt: str) -> dict[int, Path]:
        folder = self.directory / fmt
        if not folder.is_dir():
            return {}
        return {int(p.stem): p for p in folder.glob(f"*.{fmt}") if p.stem.isascii() and p.stem.isdigit()}  # not '²'

