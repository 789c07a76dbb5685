"""Frame-exact random access to a video file with PyAV.

A frame's index comes from its presentation time ((pts - start) * time_base * fps, rounded),
so `read([100, 101])` returns the same pixels as the 101st and 102nd frames of a sequential
decode, whatever the keyframe layout. Constant-frame-rate videos are assumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import VideoError
from .fingerprint import pixel_fingerprint

__all__ = ["VideoSource", "frame_count"]

SEEK_GAP = 64  # decode forward through gaps shorter than this instead of seeking


def frame_count(container: av.container.InputContainer, stream: av.video.stream.VideoStream
                ) -> tuple[int, bool] | None:
    """(frames, exact) from the header: the stream's frame count (exact), else its duration or the
    container's times the frame rate (mkv, ts and webm carry no count); None when nothing tells."""
    if stream.frames:
        return int(stream.frames), True
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration:
        return round(stream.duration * Fraction(stream.time_base) * Fraction(rate)), False
    if container.duration:
        return round(Fraction(container.duration, av.time_base) * Fraction(rate)), False
    return None


class VideoSource:
    topic: str | None = None  # a video has one picture stream (a ROS bag source names its topic)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"video not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError) as exc:
            raise VideoError(f"cannot open video {self.path}: {exc or 'no video stream'}") from None
        stream = self._stream
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise VideoError(f"{self.path}: the video stream has no frame rate")
        self.fps = Fraction(rate)
        self._time_base = Fraction(stream.time_base)
        self._start_pts = stream.start_time or 0
        self.height, self.width = stream.codec_context.height, stream.codec_context.width
        count = frame_count(self._container, stream)
        if count is None:
            raise VideoError(f"{self.path}: cannot tell how many frames the video has")
        self.num_frames = count[0]
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._position = -1  # index of the last frame the decoder returned
        self._pending: av.VideoFrame | None = None  # decoded by `_seek` but not consumed yet

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reopen(self) -> VideoSource:
        """A second, independent reader of the same video (the decode thread owns this one)."""
        return VideoSource(self.path)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def frame_times(self) -> dict[int, tuple[int, int]]:
        """A video's frames carry no times of their own here: its frames are their indices (constant rate)."""
        return {}

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (index, frame) for each index in ascending order; seeks only across large gaps."""
        for target in sorted(set(indices)):
            if not 0 <= target < self.num_frames:
                raise VideoError(f"{self.path}: frame {target} is out of range (video has {self.num_frames} frames)")
            if self._decoder is None or target <= self._position or target - self._position > SEEK_GAP:
                self._seek(target)
            yield target, self._advance_to(target)

    def head(self, count: int) -> np.ndarray:
        """The first `count` frames (all of them if the video is shorter), stacked."""
        return np.stack([frame for _, frame in self.read(range(min(count, self.num_frames)))])

    def fingerprint(self) -> str:
        """See `pixel_fingerprint`: the decoded pixels of a few frames spread over the video."""
        return pixel_fingerprint(self.read, self.num_frames, self.height, self.width)

    def _index_of(self, frame: av.VideoFrame) -> int:
        if frame.pts is None:
            raise VideoError(f"{self.path}: a frame without a timestamp follows frame {self._position}")
        return round((frame.pts - self._start_pts) * self._time_base * self.fps)

    def _seek(self, target: int) -> None:
        """Seek to a keyframe at or before `target`, backing off further if the demuxer overshoots."""
        back_off = 0
        while True:
            goal = max(target - back_off, 0)
            pts = self._start_pts + int(goal / self.fps / self._time_base)
            try:
                self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
            except av.FFmpegError as exc:
                raise VideoError(f"{self.path}: cannot seek to frame {target}: {exc}") from None
            self._decoder = self._container.decode(self._stream)
            self._position = -1
            first = self._next_frame(target)
            if first is None or self._index_of(first) <= target or goal == 0:
                self._pending = first
                return
            back_off = max(2 * back_off, 16)

    def _next_frame(self, target: int) -> av.VideoFrame | None:
        assert self._decoder is not None
        try:
            return next(self._decoder)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: decoding failed after frame {self._position} (while looking for "
                             f"frame {target}): {exc}") from None

    def _advance_to(self, target: int) -> np.ndarray:
        while True:
            frame, self._pending = self._pending, None
            if frame is None:
                frame = self._next_frame(target)
            if frame is None:
                raise VideoError(f"{self.path}: the video ends after frame {self._position} but frame {target} "
                                 f"was asked for (header says {self.num_frames} frames; truncated or corrupt file?)")
            index = self._index_of(frame)
            if index <= self._position:
                continue  # duplicate timestamp
            if index > target:
                raise VideoError(f"{self.path}: frame {target} is missing from the stream (jumped from frame "
                                 f"{self._position} to {index}); variable frame rate or corrupt file?")
            self._position = index
            if index == target:
                return frame.to_ndarray(format="rgb24")
