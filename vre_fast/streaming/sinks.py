"""Where streamed results go.

    stdout                  raw RGB24 pictures of the chosen representations (side by side), for ffplay/ffmpeg
    stdout:vre              the framed arrays (protocol.py), exactly what the batch engine would store
    vre-tcp://HOST:PORT     connects and sends the framed arrays (add ?format=raw for pictures)
    udp://, rtp://, srt://, tcp://, rtmp://...   the pictures encoded (H.264, zero latency) by PyAV
    PATH.mp4|.mkv|.avi|.ts  the pictures encoded to a file
    PATH.rrd, rerun://HOST:PORT   a Rerun recording of the arrays, or a Rerun viewer (rerun_sink.py; extra `rerun`)
    window                  an OpenCV window (needs a display and a GUI build of OpenCV)
    null                    nothing (benchmarks)
"""

from __future__ import annotations

import contextlib
import socket
import sys
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np

from ..errors import VreError
from ..h264 import add_h264_stream
from ..rerun_view import is_rerun_target
from .graph import StreamGraph, StreamResult
from .protocol import encode_result, tcp_address

__all__ = ["Sink", "open_sink"]

_CONTAINERS = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp", "rtmp": "flv", "rtsp": "rtsp"}
_VIDEO_FILES = {".mp4", ".mkv", ".avi", ".ts", ".mov"}


class Sink(Protocol):
    name: str  # what the user called it (--sink), for error messages

    def send(self, result: StreamResult) -> None: ...

    def close(self) -> None: ...


def open_sink(spec: str, graph: StreamGraph, fps: float = 30.0) -> Sink:
    if spec == "stdout":
        return ByteStreamSink(sys.stdout.buffer, graph, framed=False, name=spec)
    if spec == "stdout:vre":
        return ByteStreamSink(sys.stdout.buffer, graph, framed=True, name=spec)
    if spec == "null":
        return NullSink()
    if spec == "window":
        return WindowSink(graph)
    if spec.startswith("vre-tcp://"):
        host, port = tcp_address(spec, "--sink", 6000)
        raw = parse_qs(urlsplit(spec).query).get("format", ["vre"])[0] == "raw"
        try:
            conn = socket.create_connection((host, port), timeout=10)
        except OSError as exc:
            raise VreError(f"--sink {spec}: cannot connect: {exc}") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ByteStreamSink(SocketWriter(conn), graph, framed=not raw, name=spec)
    scheme = spec.split("://", 1)[0] if "://" in spec else None
    if scheme in _CONTAINERS:
        return EncodedSink(spec, _CONTAINERS[scheme], graph, fps)
    if Path(spec).suffix in _VIDEO_FILES:
        return EncodedSink(spec, None, graph, fps)
    if is_rerun_target(spec):
        from .rerun_sink import RerunSink  # imports the Rerun SDK

        return RerunSink(spec, graph)
    raise VreError(f"--sink {spec}: unknown sink (stdout, stdout:vre, vre-tcp://HOST:PORT, an FFmpeg URL "
                   f"({', '.join(_CONTAINERS)}), a video file, a .rrd file, rerun://HOST:PORT, window or null)")


class NullSink:
    name = "null"

    def send(self, result: StreamResult) -> None:
        pass

    def close(self) -> None:
        pass


class SocketWriter:
    """The write/flush/close of a file over a socket, with sendall (a raw socket file may write partially).
    A client that stops reading for the socket's timeout (10 s) raises TimeoutError: the stream ends."""

    def __init__(self, conn: socket.socket):
        self._conn = conn

    def write(self, data: bytes | memoryview) -> None:
        self._conn.sendall(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._conn.close()


class ByteStreamSink:
    """Raw pictures or framed arrays on a byte stream (stdout, a socket)."""

    def __init__(self, stream: BinaryIO | SocketWriter, graph: StreamGraph, framed: bool, name: str):
        self._stream, self._graph, self._framed, self.name = stream, graph, framed, name

    def send(self, result: StreamResult) -> None:
        if self._framed:
            compute_ns = int(result.compute_seconds * 1e9)
            for part in encode_result(result.frame_id, result.outputs, compute_ns):
                self._stream.write(part)
        else:
            self._stream.write(np.ascontiguousarray(self._graph.render(result)).data)
        self._stream.flush()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):  # the reader may be gone already
            self._stream.flush()
        if isinstance(self._stream, SocketWriter):
            self._stream.close()


class EncodedSink:
    """Pictures encoded with H.264 (ultrafast, zero latency, no B-frames) into a container or stream URL."""

    def __init__(self, target: str, fmt: str | None, graph: StreamGraph, fps: float):
        self._target, self._fmt, self._graph, self._fps = target, fmt, graph, fps
        self.name = target
        self._container = None
        self._stream = None
        self._count = 0

    def _open(self, height: int, width: int) -> None:
        try:
            self._container = av.open(self._target, "w", format=self._fmt)
        except av.FFmpegError as exc:
            raise VreError(f"cannot open sink {self._target}: {exc}") from None
        self._rate = Fraction(self._fps).limit_denominator(1000)
        self._stream = add_h264_stream(self._container, self._rate, height, width, preset="ultrafast",
                                       tune="zerolatency", bf="0")

    def send(self, result: StreamResult) -> None:
        picture = self._graph.render(result)
        if self._container is None:
            self._open(*picture.shape[:2])
        assert self._stream is not None and self._container is not None
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture[: self._stream.height, : self._stream.width]),
                                           format="rgb24")
        frame.pts = self._count
        frame.time_base = 1 / self._rate
        self._count += 1
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        if self._container is not None and self._stream is not None:
            self._container.mux(self._stream.encode())
            self._container.close()


class WindowSink:
    name = "window"

    def __init__(self, graph: StreamGraph):
        import cv2

        self._cv2, self._graph = cv2, graph
        try:
            cv2.namedWindow("vre-fast", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise VreError("--sink window needs a display and a GUI build of OpenCV (opencv-python, not "
                           f"opencv-python-headless): {exc}") from None

    def send(self, result: StreamResult) -> None:
        self._cv2.imshow("vre-fast", self._cv2.cvtColor(self._graph.render(result), self._cv2.COLOR_RGB2BGR))
        self._cv2.waitKey(1)

    def close(self) -> None:
        self._cv2.destroyAllWindows()
