"""Frame sources: something that yields (frame index, HxWx3 uint8 RGB) pairs, with exact random access.

A video file (VideoSource), a folder of frames (ImageFolderSource) or the image topic of a ROS bag
(RosbagSource, `sources/rosbag.py`: imported, with its `rosbags` dependency, only when a bag is opened);
`open_input` picks by the path. A video is decoded by PyAV (VideoSource) or, with `decoder="torchcodec"`, by
torchcodec (TorchCodecSource, `sources/torchcodec_video.py`: FFmpeg on the CPU, NVDEC on a CUDA device).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import VideoError
from .images import ImageFolderSource
from .video import VideoSource

__all__ = ["DECODERS", "FramesSource", "ImageFolderSource", "VideoSource", "is_rosbag", "open_input"]


class FramesSource(Protocol):
    """What a run reads its frames from (a video file, a folder of frames, a bag's image topic)."""

    path: Path
    topic: str | None  # a bag's image topic; None otherwise
    fps: Fraction
    height: int
    width: int
    num_frames: int

    @property
    def size_bytes(self) -> int: ...

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]: ...

    def head(self, count: int) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def frame_times(self) -> dict[int, tuple[int, int]]:
        """(log time, header stamp) in ns of each frame read so far, where frames carry times (a bag); {} where
        frames are their indices (a video, a folder)."""

    def reopen(self) -> FramesSource:
        """A second, independent reader of the same frames."""

    def close(self) -> None: ...

    def __enter__(self) -> FramesSource: ...

    def __exit__(self, *exc: object) -> None: ...


ROSBAG_SUFFIXES = (".bag", ".mcap", ".db3")


def is_rosbag(path: str | Path) -> bool:
    """A ROS 1 bag, a rosbag2 storage file (.mcap, .db3) or a rosbag2 directory (it has a metadata.yaml, or
    storage files without one: a recording still running, which RosbagSource refuses by name)."""
    path = Path(path)
    if path.suffix in ROSBAG_SUFFIXES or path.name.endswith(".bag.active"):  # ROS 1's name while recording
        return True
    return path.is_dir() and ((path / "metadata.yaml").is_file()
                              or any(p.suffix in (".mcap", ".db3") for p in path.iterdir()))


DECODERS = ("pyav", "torchcodec")


def open_input(path: str | Path, topic: str | None = None, fps: float | None = None, decoder: str = "pyav",
               device: str = "cpu") -> FramesSource:
    """The source `vre-fast run` reads: a ROS bag's image topic (`topic`, or its only image topic), a folder of
    frames (at `fps`, 1 when not given) or a video file. `topic` is only for bags and `fps` only for folders:
    the others carry their own. `decoder` is for video files only; torchcodec decodes on `device` (NVDEC on
    "cuda[:N]")."""
    path = Path(path)
    if decoder not in DECODERS:
        raise VideoError(f"--decoder {decoder}: unknown decoder; known: {', '.join(DECODERS)}")
    if decoder != "pyav" and (is_rosbag(path) or path.is_dir()):
        raise VideoError(f"--decoder {decoder}: {path} is a {'ROS bag' if is_rosbag(path) else 'folder of frames'}; "
                         f"a decoder is chosen for video files only")
    if is_rosbag(path):
        if fps is not None:
            raise VideoError(f"--fps {fps:g}: {path} is a ROS bag, whose messages carry their own times; --fps is "
                             f"for a folder of frames")
        from .rosbag import RosbagSource

        return RosbagSource(path, topic)
    if topic is not None:
        raise VideoError(f"{path}: --topic {topic} is for ROS bags (.bag, .mcap, .db3 or a rosbag2 directory); "
                         f"this is read as a {'folder of frames' if path.is_dir() else 'video'}")
    if path.is_dir():
        return ImageFolderSource(path, 1 if fps is None else fps)
    if fps is not None:
        raise VideoError(f"--fps {fps:g}: {path} is a video, which has its own frame rate; --fps is for a folder "
                         f"of frames")
    if decoder == "torchcodec":
        from .torchcodec_video import TorchCodecSource

        return TorchCodecSource(path, device)
    return VideoSource(path)
