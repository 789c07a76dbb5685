"""The one H.264 encoder set-up shared by everything that writes video (synthetic test videos, collages,
encoded stream sinks, benchmarks), so the codec fallback and the even-size rule live in one place."""

from __future__ import annotations

from fractions import Fraction

import av

__all__ = ["add_h264_stream"]


def add_h264_stream(container: av.container.OutputContainer, rate: int | float | Fraction, height: int, width: int,
                    **x264_options: str) -> av.video.stream.VideoStream:
    """A yuv420p H.264 stream of `height` x `width` rounded down to even sides (yuv420p halves both), so a
    caller crops its pictures to `stream.height` x `stream.width`. Where PyAV lacks libx264 the stream is
    MPEG-4 part 2 and `x264_options` (libx264's own: preset, tune, bf, crf, ...) are left out."""
    h264 = "libx264" in av.codecs_available
    stream = container.add_stream("libx264" if h264 else "mpeg4", rate=rate)
    stream.height, stream.width = height - height % 2, width - width % 2
    stream.pix_fmt = "yuv420p"
    if h264 and x264_options:
        stream.options = x264_options
    return stream
