"""A folder of frames as a source: png / jpg pictures or npy / npz arrays (H x W x 3 uint8 RGB), one file per
frame, in natural order of their names (frame_2 before frame_10): the frame index is the position in that order.

The same interface as VideoSource (frame count, frame rate, size, exact random access, batched reads, a
fingerprint of the pixels), so `vre-fast run FOLDER ...` works as on a video. A folder has no frame rate of its
own: it is given (`--fps`), 1 by default as VRE's. Each file is checked as it is read: one of another size, of
another dtype or shape, or one that does not decode is a VideoError naming it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VideoError
from .fingerprint import pixel_fingerprint

__all__ = ["IMAGE_SUFFIXES", "ARRAY_SUFFIXES", "ImageFolderSource", "natural_key"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
READ_THREADS = 2  # files decoded at once by a batched read (OpenCV and zlib release the GIL)


def natural_key(name: str) -> tuple:
    """Sorts digits by value: frame_2 before frame_10 (the full name breaks ties such as 01 / 1)."""
    parts = re.split(r"(\d+)", name)
    return tuple((1, int(p), "") if p.isdecimal() else (0, 0, p) for p in parts if p), name  # not '²'.isdigit()


class ImageFolderSource:
    topic = None  # only a ROS bag has one

    def __init__(self, path: str | Path, fps: float | Fraction = 1):
        self.path = Path(path)
        if not self.path.is_dir():
            raise VideoError(f"frame folder not found: {self.path}")
        self.files = _frame_files(self.path)
        self.num_frames = len(self.files)
        self.fps = Fraction(fps).limit_denominator(1001000)
        if self.fps <= 0:
            raise VideoError(f"{self.path}: the frame rate must be positive, got {fps}")
        first = self._load(0, None)
        self.height, self.width = first.shape[:2]

    def close(self) -> None:
        """Nothing is held open between reads."""

    def __enter__(self) -> ImageFolderSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def frame_times(self) -> dict[int, tuple[int, int]]:
        """A folder's frames carry no times of their own: they are their indices (at `fps`)."""
        return {}

    def reopen(self) -> ImageFolderSource:
        """A second reader: the files are read afresh on every call, so the same object serves."""
        return self

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (index, frame) for each index in ascending order; a few files are decoded ahead, in threads."""
        targets = sorted(set(indices))
        for target in targets:
            if not 0 <= target < self.num_frames:
                raise VideoError(f"{self.path}: frame {target} is out of range (the folder has {self.num_frames} "
                                 f"frames)")
        shape = (self.height, self.width)
        if len(targets) == 1:
            yield targets[0], self._load(targets[0], shape)
            return
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="vre-frames") as pool:
            pending: deque[tuple[int, Future[np.ndarray]]] = deque()
            for target in targets:  # at most 2 * READ_THREADS frames decoded ahead of the consumer
                pending.append((target, pool.submit(self._load, target, shape)))
                if len(pending) > 2 * READ_THREADS:
                    index, frame = pending.popleft()
                    yield index, frame.result()
            while pending:
                index, frame = pending.popleft()
                yield index, frame.result()

    def head(self, count: int) -> np.ndarray:
        """The first `count` frames (all of them if the folder holds fewer), stacked."""
        return np.stack([frame for _, frame in self.read(range(min(count, self.num_frames)))])

    def fingerprint(self) -> str:
        """See `pixel_fingerprint`: the same pixels as a video's give the same fingerprint (frames extracted
        losslessly from a video are that video)."""
        return pixel_fingerprint(self.read, self.num_frames, self.height, self.width)

    def _load(self, index: int, shape: tuple[int, int] | None) -> np.ndarray:
        """Frame `index` as H x W x 3 uint8 RGB; `shape`: the (height, width) every frame must have."""
        path = self.files[index]
        frame = _read_array(path) if path.suffix.lower() in ARRAY_SUFFIXES else _read_picture(path)
        if shape is not None and frame.shape[:2] != shape:
            raise VideoError(f"{path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the folder's frames are "
                             f"{shape[1]}x{shape[0]} (as {self.files[0].name}); every frame must have one size")
        return frame


def _frame_files(folder: Path) -> list[Path]:
    """The folder's frame files in natural order. Hidden files and sub-folders are not frames; any other file is
    an error (a folder of frames holds frames), as is a mix of pictures and arrays."""
    files, other = [], []
    for entry in folder.iterdir():
        if entry.name.startswith(".") or entry.is_dir():
            continue
        (files if entry.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES else other).append(entry)
    if other:
        raise VideoError(f"{folder}: {sorted(other)[0].name} is not a frame (a folder of frames holds only "
                         f"{', '.join(s[1:] for s in IMAGE_SUFFIXES + ARRAY_SUFFIXES)} files)")
    if not files:
        raise VideoError(f"{folder}: no frames in it (png, jpg, npy or npz files)")
    kinds = {f.suffix.lower() in ARRAY_SUFFIXES for f in files}
    if len(kinds) > 1:
        picture = next(f for f in files if f.suffix.lower() in IMAGE_SUFFIXES)
        array = next(f for f in files if f.suffix.lower() in ARRAY_SUFFIXES)
        raise VideoError(f"{folder}: holds both pictures ({picture.name}) and arrays ({array.name}); a folder of "
                         f"frames holds one kind")
    return sorted(files, key=lambda f: natural_key(f.name))


def _read_picture(path: Path) -> np.ndarray:
    import cv2

    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise VideoError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    picture = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if picture is None:
        raise VideoError(f"{path}: not a readable picture (truncated or not a {path.suffix[1:]} file?)")
    if picture.dtype != np.uint8:
        raise VideoError(f"{path}: a {picture.dtype} picture; frames must be 8 bits per channel")
    if picture.ndim == 2:
        return cv2.cvtColor(picture, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(picture, cv2.COLOR_BGRA2RGB if picture.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                if "arr_0" not in keys and len(keys) != 1:
                    raise VideoError(f"{path}: holds {keys}; a frame's npz holds one array (or 'arr_0')")
                array = data["arr_0" if "arr_0" in keys else keys[0]]
    except VideoError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise VideoError(f"{path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise VideoError(f"{path}: a {array.dtype} array of shape {array.shape}; a frame is H x W x 3 uint8 RGB")
    return np.ascontiguousarray(array)
