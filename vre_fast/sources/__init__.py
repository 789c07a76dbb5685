"""Frame sources: something that yields (frame index, HxWx3 uint8 RGB) pairs, by exact index."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import VideoError
from .images import ImageFolderSource
from .video import VideoSource

__all__ = ["FramesSource", "ImageFolderSource", "VideoSource", "open_frames"]


class FramesSource(Protocol):
    """What a run reads its frames from (a video file, a folder of frames): exact random access by index."""

    path: Path
    fps: Fraction
    height: int
    width: int
    num_frames: int

    @property
    def size_bytes(self) -> int: ...

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]: ...

    def head(self, count: int) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def reopen(self) -> FramesSource: ...

    def close(self) -> None: ...

    def __enter__(self) -> FramesSource: ...

    def __exit__(self, *exc: object) -> None: ...


def open_frames(path: str | Path, fps: float | None = None) -> FramesSource:
    """A folder of frames (at `fps`, 1 when not given) or a video file (its own frame rate: `fps` is refused)."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, 1 if fps is None else fps)
    if fps is not None:
        raise VideoError(f"--fps {fps:g}: {path} is a video, which has its own frame rate; --fps is for a folder "
                         f"of frames")
    return VideoSource(path)
