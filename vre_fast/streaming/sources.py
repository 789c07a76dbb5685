"""Where streamed frames come from. Each source yields SourceFrame items from a reader thread.

    stdin                      raw RGB24 frames of --size, back to back (as VRE and ffmpeg -f rawvideo)
    vre-tcp://HOST:PORT        a TCP server (HOST defaults to 127.0.0.1) reading the framed protocol
    udp://, rtp://, rtsp://, srt://, tcp://, http://, ...   any FFmpeg URL, decoded by PyAV
    v4l2:/dev/video0           a camera through FFmpeg's v4l2 input
    PATH                       a video file (with pace=True, at its native frame rate)
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from ..errors import VideoError, VreError
from .protocol import Disconnected, Limits, ProtocolError, read_exact, read_frame_header

__all__ = ["FrameSource", "SourceFrame", "open_source"]

logger = logging.getLogger("vre_fast")


@dataclass(frozen=True)
class SourceFrame:
    frame_id: int
    image: np.ndarray  # HxWx3 uint8 RGB
    received_at: float  # time.perf_counter() when the whole frame had arrived


class FrameSource(Protocol):
    def frames(self) -> Iterator[SourceFrame]: ...

    def close(self) -> None:
        """Unblocks `frames()` from another thread; called on SIGINT and at the end."""


DEFAULT_LIMITS = Limits()


def open_source(spec: str, size: tuple[int, int] | None = None, pace: bool = False,
                limits: Limits = DEFAULT_LIMITS, max_clients: int | None = None) -> FrameSource:
    """`size` is (height, width): required for stdin, enforced on TCP frames, a resize for decoded video."""
    if spec == "stdin":
        if size is None:
            raise VreError("--source stdin needs --size WxH: raw frames carry no header")
        return RawStreamSource(sys.stdin.buffer, size)
    if spec.startswith("vre-tcp://"):
        url = urlsplit(spec)
        if url.port is None:
            raise VreError(f"--source {spec}: give a port, e.g. vre-tcp://127.0.0.1:5555")
        return TcpServerSource(url.hostname or "127.0.0.1", url.port, size, limits, max_clients)
    if spec.startswith("v4l2:"):
        return PyAVSource(spec[len("v4l2:"):], size, pace=False, fmt="v4l2")
    if "://" in spec:
        return PyAVSource(spec, size, pace=False)
    if not Path(spec).is_file():
        raise VideoError(f"--source {spec}: no such file (sources: stdin, vre-tcp://HOST:PORT, an FFmpeg URL, "
                         f"v4l2:/dev/videoN or a video file)")
    return PyAVSource(spec, size, pace=pace)


class RawStreamSource:
    """Back-to-back raw RGB24 frames of a known size on a byte stream (stdin)."""

    def __init__(self, stream: BinaryIO, size: tuple[int, int]):
        self._stream, self._size = stream, size

    def frames(self) -> Iterator[SourceFrame]:
        h, w = self._size
        for frame_id in range(sys.maxsize):
            try:
                data = read_exact(self._stream, h * w * 3)
            except Disconnected as end:
                if end.partial:
                    logger.warning("stdin ended in the middle of frame %d (not %dx%d RGB24?)", frame_id, w, h)
                return
            yield SourceFrame(frame_id, np.frombuffer(data, np.uint8).reshape(h, w, 3), time.perf_counter())

    def close(self) -> None:
        """stdin cannot be interrupted portably; the reader thread is a daemon."""


class TcpServerSource:
    """Serves one client at a time; a malformed frame ends that client's session, never the server."""

    def __init__(self, host: str, port: int, size: tuple[int, int] | None, limits: Limits,
                 max_clients: int | None):
        self._size, self._limits, self._max_clients = size, limits, max_clients
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.settimeout(0.2)
        self.address = self._server.getsockname()[:2]
        self.rejected = 0
        self._closed = False
        logger.info("listening on %s:%d", *self.address)

    def frames(self) -> Iterator[SourceFrame]:
        clients = 0
        while not self._closed and (self._max_clients is None or clients < self._max_clients):
            try:
                conn, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            clients += 1
            with conn, conn.makefile("rb", buffering=1 << 20) as stream:
                conn.settimeout(None)
                yield from self._session(stream, f"{peer[0]}:{peer[1]}")

    def _session(self, stream: BinaryIO, peer: str) -> Iterator[SourceFrame]:
        logger.info("client %s connected", peer)
        while not self._closed:
            try:
                header = read_frame_header(stream, self._limits)
                data = read_exact(stream, header.nbytes, started=True)
            except Disconnected as end:
                if end.partial:
                    self.rejected += 1
                    logger.warning("client %s disconnected in the middle of a frame; session ended", peer)
                else:
                    logger.info("client %s disconnected", peer)
                return
            except (ProtocolError, OSError) as exc:
                self.rejected += 1
                logger.error("client %s: %s; closing its connection", peer, exc)
                return
            if self._size is not None and (header.height, header.width) != self._size:
                self.rejected += 1
                logger.error("client %s: frame %d is %dx%d, expected %dx%d; frame skipped", peer, header.frame_id,
                             header.width, header.height, self._size[1], self._size[0])
                continue
            yield SourceFrame(header.frame_id, np.frombuffer(data, np.uint8).reshape(header.height, header.width, 3),
                              time.perf_counter())

    def close(self) -> None:
        self._closed = True
        self._server.close()


class PyAVSource:
    """A file, URL or device decoded by FFmpeg; frames resized to `size` when given."""

    def __init__(self, target: str, size: tuple[int, int] | None, pace: bool, fmt: str | None = None):
        self._target, self._size, self._pace = target, size, pace
        self._live = "://" in target or fmt is not None  # a network stream or a device, not a file
        try:
            self._container = av.open(target, format=fmt, timeout=(10.0, 10.0))
        except av.FFmpegError as exc:
            raise VideoError(f"cannot open stream {target}: {exc}") from None
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._closed = False

    def frames(self) -> Iterator[SourceFrame]:
        start, first_time = time.perf_counter(), None
        try:
            for frame_id, frame in enumerate(self._container.decode(self._stream)):
                if self._closed:
                    return
                if self._pace and frame.time is not None:
                    first_time = frame.time if first_time is None else first_time
                    delay = (frame.time - first_time) - (time.perf_counter() - start)
                    if delay > 0:
                        time.sleep(delay)
                image = frame.to_ndarray(format="rgb24")
                if self._size is not None and image.shape[:2] != self._size:
                    image = cv2.resize(image, (self._size[1], self._size[0]), interpolation=cv2.INTER_AREA)
                yield SourceFrame(frame_id, image, time.perf_counter())
        except av.FFmpegError as exc:
            if self._closed:
                return
            if self._live:  # a live stream that went quiet past its timeout has ended
                logger.info("%s: stream ended (%s)", self._target, exc)
                return
            raise VideoError(f"{self._target}: decoding failed: {exc}") from None

    def close(self) -> None:
        self._closed = True
