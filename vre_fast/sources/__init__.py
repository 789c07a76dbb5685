"""Frame sources: something that yields (frame index, HxWx3 uint8 RGB) pairs, with exact random access.

A video file (VideoSource) or the image topic of a ROS bag (RosbagSource, `sources/rosbag.py`: imported, with
its `rosbags` dependency, only when a bag is opened); `open_input` picks by the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import VideoError
from .video import VideoSource

__all__ = ["SeekableSource", "VideoSource", "is_rosbag", "open_input"]


class SeekableSource(Protocol):
    """What the engine reads frames through (VideoSource, RosbagSource)."""

    path: Path
    topic: str | None  # a bag's image topic; None for a video
    num_frames: int
    fps: Fraction
    height: int
    width: int

    @property
    def size_bytes(self) -> int: ...

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]: ...

    def head(self, count: int) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def frame_times(self) -> dict[int, tuple[int, int]]:
        """(log time, header stamp) in ns of each frame read so far, where frames carry times (a bag); {} for a
        video (its frames are their indices)."""

    def reopen(self) -> SeekableSource:
        """A second, independent reader of the same frames."""

    def close(self) -> None: ...

    def __enter__(self) -> SeekableSource: ...

    def __exit__(self, *exc: object) -> None: ...

ROSBAG_SUFFIXES = (".bag", ".mcap", ".db3")


def is_rosbag(path: str | Path) -> bool:
    """A ROS 1 bag, a rosbag2 storage file (.mcap, .db3) or a rosbag2 directory (it has a metadata.yaml)."""
    path = Path(path)
    return path.suffix in ROSBAG_SUFFIXES or (path.is_dir() and (path / "metadata.yaml").is_file())


def open_input(path: str | Path, topic: str | None = None) -> SeekableSource:
    """The source `vre-fast run` reads: a ROS bag's image topic (`topic`, or its only image topic) or a video."""
    if is_rosbag(path):
        from .rosbag import RosbagSource

        return RosbagSource(path, topic)
    if topic is not None:
        raise VideoError(f"{path}: --topic {topic} is for ROS bags (.bag, .mcap, .db3 or a rosbag2 directory); "
                         f"this is read as a video")
    return VideoSource(path)
