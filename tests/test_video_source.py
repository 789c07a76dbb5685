"""Frame-exact access against a sequential decode; clear errors for corrupt and truncated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_video

from vre_fast import VideoError
from vre_fast.sources import VideoSource


@pytest.mark.parametrize("indices", [
    [0, 1, 2], [50, 51, 52], [89], [30, 31, 75, 76], [10, 40, 70], list(range(85, 90)),
])
def test_read_equals_sequential_decode(decoded_reference, indices):
    path, frames = decoded_reference
    with VideoSource(path) as src:
        assert src.num_frames == len(frames) == 90
        got = dict(src.read(indices))
    assert sorted(got) == indices
    for i in indices:
        assert np.array_equal(got[i], frames[i]), f"frame {i} differs from the sequential decode"


def test_backward_and_repeated_reads(decoded_reference):
    path, frames = decoded_reference
    with VideoSource(path) as src:
        for batch in ([60, 61], [5], [60], [26, 27], [0]):
            for i, frame in src.read(batch):
                assert np.array_equal(frame, frames[i]), i


def test_out_of_range_names_file_and_frame(decoded_reference):
    path, _ = decoded_reference
    with VideoSource(path) as src, pytest.raises(VideoError, match=r"long\.mp4: frame 90 is out of range"):
        list(src.read([90]))


def test_garbage_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match=r"cannot open video .*garbage\.mp4"):
        VideoSource(bad)
    with pytest.raises(VideoError, match=r"video not found: .*nothing\.mp4"):
        VideoSource(tmp_path / "nothing.mp4")


def test_truncated_file_names_file_and_frame(tmp_path: Path):
    path = make_video(tmp_path / "cut.mkv", num_frames=60, gop=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with VideoSource(path) as src, pytest.raises(VideoError, match=r"cut\.mkv: the video ends after frame \d+ "
                                                                   r"but frame \d+ was asked for"):
        assert src.num_frames == 60  # the header still promises 60 frames
        for _ in src.read(range(60)):
            pass
    mp4 = make_video(tmp_path / "cut.mp4", num_frames=60)  # mp4 keeps its index at the end: unopenable
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"cannot open video .*cut\.mp4"):
        VideoSource(mp4)


def test_the_h264_writer_rounds_odd_sides_down_and_passes_x264_options(tmp_path: Path):
    """One set-up for every video writer: yuv420p needs even sides (libx264 refuses odd ones)."""
    import av

    from vre_fast.h264 import add_h264_stream
    from vre_fast.sources.synthetic import drifting_texture, write_video

    with av.open(str(tmp_path / "empty.mp4"), "w") as container:
        stream = add_h264_stream(container, 25, 49, 63, preset="ultrafast", bf="0")
        assert (stream.height, stream.width, stream.pix_fmt) == (48, 62, "yuv420p")
        if stream.codec_context.name == "libx264":
            assert stream.options == {"preset": "ultrafast", "bf": "0"}
    with VideoSource(write_video(tmp_path / "odd.mp4", drifting_texture(3, 49, 63))) as src:
        assert (src.num_frames, src.height, src.width) == (3, 48, 62)
