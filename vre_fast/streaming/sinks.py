"""Where streamed results go.

    stdout                  raw RGB24 pictures of the chosen representations (side by side), for ffplay/ffmpeg
    stdout:vre              the framed arrays (protocol.py), exactly what the batch engine would store
    vre-tcp://HOST:PORT     connects and sends the framed arrays (add ?format=raw for pictures)
    reply                   each frame's framed arrays back on the connection it came from (a vre-tcp source;
                            reply?format=raw: its picture, VRE's socket mode)
    zenoh://PREFIX          each representation published on PREFIX/<name> (zenoh_io.py; the [zenoh] extra)
    udp://, rtp://, srt://, tcp://, rtmp://...   the pictures encoded (H.264, zero latency) by PyAV
    PATH.mp4|.mkv|.avi|.ts  the pictures encoded to a file
    PATH.rrd, rerun://HOST:PORT   a Rerun recording of the arrays, or a Rerun viewer (rerun_sink.py; extra `rerun`)
    window                  an OpenCV window (needs a display and a GUI build of OpenCV)
    null                    nothing (benchmarks)

The sinks that send pictures draw them with Pictures: the chosen representations side by side, resized to
--output-size, with --hud's fps and latency in the top-left corner.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np

from ..errors import VreError
from ..h264 import add_h264_stream
from ..rerun_view import is_rerun_target
from .graph import StreamGraph, StreamResult
from .protocol import encode_result, tcp_address

__all__ = ["Pictures", "Sink", "hud_box", "open_sink"]

_CONTAINERS = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp", "rtmp": "flv", "rtsp": "rtsp"}
_VIDEO_FILES = {".mp4", ".mkv", ".avi", ".ts", ".mov"}


class Sink(Protocol):
    name: str  # what the user called it (--sink), for error messages

    def send(self, result: StreamResult) -> None: ...

    def close(self) -> None: ...


def open_sink(spec: str, graph: StreamGraph, fps: float = 30.0, source: object = None,
              output_size: tuple[int, int] | None = None, hud: bool = False) -> Sink:
    """`source`: the stream's source, for the sinks that need it (reply answers on its connections, a zenoh sink
    shares a zenoh source's session). `output_size` (height, width) and `hud` are for the sinks that send pictures
    (`draws_pictures`); asked of another sink they are an error, not silently ignored."""
    sink = _open_sink(spec, graph, fps, source, Pictures(graph, output_size, hud))
    if (output_size is not None or hud) and not getattr(sink, "draws_pictures", False):
        sink.close()
        raise VreError(f"--output-size and --hud draw on pictures; --sink {spec} sends none (the picture sinks: "
                       f"stdout, ?format=raw, reply?format=raw, FFmpeg URLs, video files, window)")
    return sink


def _open_sink(spec: str, graph: StreamGraph, fps: float, source: object, pictures: Pictures) -> Sink:
    if spec == "stdout":
        return ByteStreamSink(sys.stdout.buffer, pictures, framed=False, name=spec)
    if spec == "stdout:vre":
        return ByteStreamSink(sys.stdout.buffer, pictures, framed=True, name=spec)
    if spec == "null":
        return NullSink()
    if spec == "window":
        return WindowSink(pictures)
    if spec == "reply" or spec.startswith("reply?"):
        return ReplySink(spec, pictures, source)
    if spec.startswith("zenoh://"):
        from .zenoh_io import ZenohSink, ZenohSource, ZenohUrl

        url = ZenohUrl.parse(spec, "--sink")
        if isinstance(source, ZenohSource):
            if url.listen or url.connect:
                raise VreError(f"--sink {spec}: the zenoh source and sink share one session: give listen= and "
                               f"connect= on --source")
            return ZenohSink(url, graph, source.peer)
        return ZenohSink(url, graph)
    if spec.startswith("vre-tcp://"):
        host, port = tcp_address(spec, "--sink", 6000)
        try:
            conn = socket.create_connection((host, port), timeout=10)
        except OSError as exc:
            raise VreError(f"--sink {spec}: cannot connect: {exc}") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ByteStreamSink(SocketWriter(conn), pictures, framed=_format(spec) == "vre", name=spec)
    scheme = spec.split("://", 1)[0] if "://" in spec else None
    if scheme in _CONTAINERS:
        return EncodedSink(spec, _CONTAINERS[scheme], pictures, fps)
    if Path(spec).suffix in _VIDEO_FILES:
        return EncodedSink(spec, None, pictures, fps)
    if is_rerun_target(spec):
        from .rerun_sink import RerunSink  # imports the Rerun SDK

        return RerunSink(spec, graph)
    raise VreError(f"--sink {spec}: unknown sink (stdout, stdout:vre, vre-tcp://HOST:PORT, reply, zenoh://PREFIX, an "
                   f"FFmpeg URL ({', '.join(_CONTAINERS)}), a video file, a .rrd file, rerun://HOST:PORT, window or "
                   f"null)")

def _format(spec: str) -> str:
    """?format=vre (framed arrays, the default) or ?format=raw (pictures)."""
    fmt = parse_qs(urlsplit(spec).query).get("format", ["vre"])[0]
    if fmt not in ("vre", "raw"):
        raise VreError(f"--sink {spec}: format {fmt!r}; give format=vre (framed arrays, the default) or format=raw "
                       f"(pictures)")
    return fmt


HUD_FONT = cv2.FONT_HERSHEY_SIMPLEX
_HUD_TEMPLATE = "9999.9 fps  99999.9 ms  #9999999"  # the widest line the HUD box is sized for


def _hud_font(height: int) -> tuple[float, int]:
    """(font scale, padding) for a picture `height` pixels high: legible from 240 to 2160 lines."""
    scale = min(1.5, max(0.35, height / 900))
    return scale, max(2, round(6 * scale))


def hud_box(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the HUD's box at the picture's top-left corner; nothing outside it is drawn on."""
    scale, pad = _hud_font(height)
    (text_w, text_h), baseline = cv2.getTextSize(_HUD_TEMPLATE, HUD_FONT, scale, 1)
    return min(height, text_h + baseline + 2 * pad), min(width, text_w + 2 * pad)


class Pictures:
    """What the picture sinks send: StreamGraph.render's side-by-side picture, resized to `output_size` (height,
    width; INTER_AREA when shrinking), with `hud`: one line on a black box at the top-left corner, the frame rate
    sent (over the last 30 pictures), the frame's latency (arrival -> drawn) and its id."""

    def __init__(self, graph: StreamGraph, output_size: tuple[int, int] | None = None, hud: bool = False):
        self._graph, self.output_size, self.hud = graph, output_size, hud
        self._drawn: deque[float] = deque(maxlen=30)

    def __call__(self, result: StreamResult) -> np.ndarray:
        picture = self._graph.render(result)
        if self.output_size is not None and picture.shape[:2] != self.output_size:
            h, w = self.output_size
            shrink = h * w < picture.shape[0] * picture.shape[1]
            picture = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if self.hud:
            picture = np.ascontiguousarray(picture)
            self._draw_hud(picture, result)
        return picture

    def hud_line(self, result: StreamResult, now: float) -> str:
        """The HUD's text for a picture drawn at `now` (perf_counter): counts it in the frame rate."""
        self._drawn.append(now)
        fps = (len(self._drawn) - 1) / (now - self._drawn[0]) if len(self._drawn) > 1 else 0.0
        arrived = result.origin.received_at if result.origin is not None else now - result.compute_seconds
        return f"{fps:.1f} fps  {1000 * (now - arrived):.1f} ms  #{result.frame_id}"

    def _draw_hud(self, picture: np.ndarray, result: StreamResult) -> None:
        text = self.hud_line(result, time.perf_counter())
        box_h, box_w = hud_box(*picture.shape[:2])
        scale, pad = _hud_font(picture.shape[0])
        box = picture[:box_h, :box_w]  # drawn into a view: cv2 cannot spill past the box
        box[:] = 0
        baseline = cv2.getTextSize(text, HUD_FONT, scale, 1)[1]
        cv2.putText(box, text, (pad, box_h - pad - baseline), HUD_FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


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

    def __init__(self, stream: BinaryIO | SocketWriter, pictures: Pictures, framed: bool, name: str):
        self._stream, self._pictures, self._framed, self.name = stream, pictures, framed, name
        self.draws_pictures = not framed

    def send(self, result: StreamResult) -> None:
        if self._framed:
            compute_ns = int(result.compute_seconds * 1e9)
            for part in encode_result(result.frame_id, result.outputs, compute_ns):
                self._stream.write(part)
        else:
            self._stream.write(np.ascontiguousarray(self._pictures(result)).data)
        self._stream.flush()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):  # the reader may be gone already
            self._stream.flush()
        if isinstance(self._stream, SocketWriter):
            self._stream.close()


class EncodedSink:
    """Pictures encoded with H.264 (ultrafast, zero latency, no B-frames) into a container or stream URL."""

    draws_pictures = True

    def __init__(self, target: str, fmt: str | None, pictures: Pictures, fps: float):
        self._target, self._fmt, self._pictures, self._fps = target, fmt, pictures, fps
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
        picture = self._pictures(result)
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
    draws_pictures = True

    def __init__(self, pictures: Pictures):
        self._pictures = pictures
        try:
            cv2.namedWindow("vre-fast", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise VreError("--sink window needs a display and a GUI build of OpenCV (opencv-python, not "
                           f"opencv-python-headless): {exc}") from None

    def send(self, result: StreamResult) -> None:
        cv2.imshow("vre-fast", cv2.cvtColor(self._pictures(result), cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)

    def close(self) -> None:
        cv2.destroyAllWindows()


class ReplySink:
    """--sink reply: each result goes back on the connection its frame came from (one socket, request -> reply,
    as a control loop wants). `reply`: the framed arrays (VRO1); `reply?format=raw`: the picture, raw RGB24 (VRE's
    socket mode; its size is --output-size, or the side-by-side picture's). The source must be a vre-tcp server;
    a client that is gone or does not take its reply within --read-timeout is dropped, the stream goes on."""

    def __init__(self, spec: str, pictures: Pictures, source: object):
        if not hasattr(source, "enable_replies"):
            raise VreError(f"--sink {spec}: replies go back on the connection a frame came from: it needs --source "
                           f"vre-tcp://HOST:PORT (framed, or ?format=raw)")
        source.enable_replies()
        self.name, self._pictures, self._raw = spec, pictures, _format(spec) == "raw"
        self.draws_pictures = self._raw

    def send(self, result: StreamResult) -> None:
        reply = result.origin.reply if result.origin is not None else None
        if reply is None:  # not a frame of the source's clients (a warm-up frame pushed by hand)
            return
        if self._raw:
            reply.send([np.ascontiguousarray(self._pictures(result)).data])
        else:
            reply.send(encode_result(result.frame_id, result.outputs, int(result.compute_seconds * 1e9)))

    def close(self) -> None:
        """The connections are the source's: it closes them."""
