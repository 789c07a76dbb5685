"""Shared fixtures: small videos made with PyAV on the fly (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest


def synthetic_frame(i: int, height: int, width: int) -> np.ndarray:
    """A textured scene drifting 2 px right per frame, with the frame index drawn as bars on top."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 4 + 1, (width + 4 * 64) // 4 + 1, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((4, 4, 1), np.uint8))
    frame = np.ascontiguousarray(texture[:height, 2 * i % 64: 2 * i % 64 + width])
    for bit in range(8):
        frame[: height // 8, bit * width // 8: (bit + 1) * width // 8] = 255 * ((i >> bit) & 1)
    return frame


def make_video(path: Path, num_frames: int = 24, height: int = 48, width: int = 64, fps: int = 10,
               gop: int = 8) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = gop
        stream.options = {"bf": "0"} if stream.codec_context.name == "libx264" else {}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(i, height, width), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "video.mp4")


@pytest.fixture(scope="session")
def decoded_reference(tmp_path_factory: pytest.TempPathFactory):
    """(video path, every frame from a plain sequential decode) of a longer video with sparse keyframes."""
    path = make_video(tmp_path_factory.mktemp("seq") / "long.mp4", num_frames=90, gop=25)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return path, frames
