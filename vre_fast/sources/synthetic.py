"""Small synthetic videos for tests, benchmarks and offline examples (nothing to download)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from ..h264 import add_h264_stream

__all__ = ["drifting_texture", "write_video"]


def drifting_texture(num_frames: int, height: int, width: int, step: int = 2, seed: int = 0) -> Iterable[np.ndarray]:
    """Random 4x4-pixel blocks sliding `step` px to the left per frame: real motion and edges."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height // 4 + 1, (width + step * num_frames) // 4 + 1, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((4, 4, 1), np.uint8))
    for i in range(num_frames):
        yield np.ascontiguousarray(texture[:height, step * i: step * i + width])


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, gop: int = 12) -> Path:
    """Encodes RGB frames with H.264 (MPEG-4 part 2 where libx264 is missing), no B-frames; odd sides lose their
    last row or column."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = add_h264_stream(container, fps, *first.shape[:2], bf="0")
        stream.gop_size = gop
        for frame in (first, *frames):
            picture = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path
