"""Where streamed frames come from. Each source yields SourceFrame items from a reader thread.

    stdin                      raw RGB24 frames of --size, back to back (as VRE and ffmpeg -f rawvideo)
    vre-tcp://HOST:PORT        a TCP server (HOST defaults to 127.0.0.1) reading the framed protocol
    vre-tcp://HOST:PORT?format=raw   the same server reading raw RGB24 frames of --size back to back (VRE's)
    zenoh://KEY                a zenoh subscription (zenoh_io.py; the [zenoh] extra)
    udp://, rtp://, rtsp://, srt://, tcp://, http://, ...   any FFmpeg URL, decoded by PyAV
    v4l2:/dev/video0           a camera through FFmpeg's v4l2 input
    PATH                       a video file (with pace=True, at its native frame rate)
    FOLDER                     a folder of frames (png, jpg, npy, npz; natural order), with pace=True at `fps`
    BAG                        a ROS bag's image topic (.bag, .mcap, .db3, a rosbag2 directory; pace=True: at the
                               messages' log times); frame ids are message indices

The TCP server serves several clients at once (up to max_clients), each from its own reader thread with
read and idle deadlines, so a stalled client never holds up the others. All clients feed one stream:
with the `latest` policy the newest frame from ANY client wins, a deliberate choice (one model, one
slot: the freshest picture is what a live consumer wants); with `all` every client's frames are kept
and back-pressure reaches each client through TCP. With `--sink reply` each result goes back on the connection
its frame came from (ReplyChannel).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np

from ..errors import VideoError, VreError
from ..sources import is_rosbag
from ..sources.images import ImageFolderSource
from ..sources.video import frame_count
from .protocol import (
    POLL_SECONDS,
    ClientTimeout,
    Disconnected,
    FrameReceiver,
    Limits,
    ProtocolError,
    read_exact,
    tcp_address,
)

__all__ = ["FrameSource", "ReplyChannel", "SourceFrame", "open_source"]

logger = logging.getLogger("vre_fast")


@dataclass(frozen=True)
class SourceFrame:
    frame_id: int
    image: np.ndarray  # HxWx3 uint8 RGB
    received_at: float  # time.perf_counter() when the whole frame had arrived
    reply: ReplyChannel | None = None  # where its result goes back, with --sink reply


class FrameSource(Protocol):
    def frames(self) -> Iterator[SourceFrame]: ...

    def close(self) -> None:
        """Unblocks `frames()` from another thread; called on SIGINT and at the end."""


DEFAULT_LIMITS = Limits()


def open_source(spec: str, size: tuple[int, int] | None = None, pace: bool = False,
                limits: Limits = DEFAULT_LIMITS, max_clients: int = 8, sessions: int | None = None,
                read_timeout: float = 10.0, idle_timeout: float = 60.0, fps: float = 30.0,
                topic: str | None = None) -> FrameSource:
    """`size` is (height, width): required for stdin and raw TCP, enforced on framed TCP and zenoh frames, a resize
    for decoded video, folders and bags. `topic` is a ROS bag's image topic (None: its only one).

    The rest is for vre-tcp:// (TcpServerSource): clients served at once, client sessions in total before the
    stream ends (None: until close()), and the per-frame read and per-connection idle deadlines in seconds; `fps`
    paces a folder of frames.
    """
    bag = "://" not in spec and is_rosbag(spec)
    if topic is not None and not bag:
        raise VreError(f"--topic {topic} is for ROS bag sources (.bag, .mcap, .db3 or a rosbag2 directory), "
                       f"not --source {spec}")
    if bag:
        return RecordedSource.bag(spec, topic, size, pace)
    if spec == "stdin":
        if size is None:
            raise VreError("--source stdin needs --size WxH: raw frames carry no header")
        limits.check_size(size)
        return RawStreamSource(sys.stdin.buffer, size)
    if spec.startswith("vre-tcp://"):
        host, port = tcp_address(spec, "--source", 5555)
        fmt = parse_qs(urlsplit(spec).query).get("format", ["vre"])[0]
        if fmt not in ("vre", "raw"):
            raise VreError(f"--source {spec}: format {fmt!r}; give format=vre (framed, the default) or format=raw")
        if fmt == "raw" and size is None:
            raise VreError(f"--source {spec}: raw frames carry no header: give --size WxH")
        return TcpServerSource(host, port, size, limits, max_clients, sessions, read_timeout, idle_timeout,
                               raw=fmt == "raw")
    if spec.startswith("zenoh://"):
        from .zenoh_io import ZenohSource, ZenohUrl

        return ZenohSource(ZenohUrl.parse(spec, "--source"), size, limits)
    if spec.startswith("v4l2:"):
        return PyAVSource(spec[len("v4l2:"):], size, pace=False, fmt="v4l2")
    if "://" in spec:
        return PyAVSource(spec, size, pace=False)
    if Path(spec).is_dir():
        return RecordedSource.folder(ImageFolderSource(spec, fps), size, pace)
    if not Path(spec).is_file():
        raise VideoError(f"--source {spec}: no such file (sources: stdin, vre-tcp://HOST:PORT, zenoh://KEY, an FFmpeg "
                         f"URL, v4l2:/dev/videoN, a video file, a folder of frames or a ROS bag)")
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
    """A TCP server for the framed protocol that serves up to `max_clients` clients at once.

    Threads: one accepts connections, one per client reads its frames (FrameReceiver: every frame has a
    read deadline, every connection an idle deadline) and puts them on a small bounded queue that
    `frames()` yields from. A client that misbehaves (a malformed, oversized, truncated or too slow
    frame) is dropped with a message naming it; the others never wait on it. A client beyond
    `max_clients` (or beyond `sessions`) is refused: it gets one line, b"VRE-REFUSED <why>\n", and is
    counted in `refused`.

    Frames of every client share the queue, in the order they arrived. With the `all` policy a full queue
    stops the readers, so back-pressure reaches each client through TCP; with `latest` the newest frame of
    ANY client wins (one slot for the whole server, not one per client): for several cameras feeding one
    model, run one stream per camera.

    Memory: each reader holds at most one frame (being received, or waiting for room on the queue), so the
    server holds at most max_clients + queue_size frames, each at most limits.max_height * max_width * 3
    bytes; the runtime adds its policy's slots (1 for latest, 2 for all) and the frame in compute.

    `raw`: clients send raw RGB24 frames of `size` back to back (VRE's TCP input). After enable_replies()
    (--sink reply) each frame carries its connection's ReplyChannel, and a client that closes its sending side
    still gets the replies to the frames it sent (for up to read_timeout seconds).
    """

    def __init__(self, host: str, port: int, size: tuple[int, int] | None, limits: Limits, max_clients: int = 8,
                 sessions: int | None = None, read_timeout: float = 10.0, idle_timeout: float = 60.0,
                 queue_size: int = 2, raw: bool = False):
        if max_clients < 1:
            raise VreError(f"--max-clients {max_clients}: at least one client must be allowed")
        if sessions is not None and sessions < 0:
            raise VreError(f"--sessions {sessions}: give a count of 0 or more")
        if not (read_timeout > 0 and idle_timeout > 0):
            raise VreError(f"--read-timeout {read_timeout:g} / --idle-timeout {idle_timeout:g}: give seconds > 0")
        if raw and size is None:
            raise VreError("raw TCP frames carry no header: give their --size")
        if size is not None:
            limits.check_size(size)
        self._size, self._limits, self._raw, self._replies = size, limits, raw, False
        self._max_clients, self._sessions = max_clients, sessions
        self._read_timeout, self._idle_timeout = read_timeout, idle_timeout
        self._frames: queue.Queue[SourceFrame] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._lock = threading.Lock()  # guards the counters below, written by every reader thread
        self._acceptor: threading.Thread | None = None
        self._readers: list[threading.Thread] = []
        self.connected = 0  # clients connected now
        self.peak_connected = 0  # the most clients connected at once
        self.started = 0  # sessions started so far
        self.rejected = 0  # frames rejected: malformed, oversized, of the wrong size, incomplete
        self.refused = 0  # clients refused: too many at once, or after the last session
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.settimeout(POLL_SECONDS)
        self.address = self._server.getsockname()[:2]
        logger.info("listening on %s:%d", *self.address)

    def enable_replies(self) -> None:
        """Every frame from now on carries its connection's ReplyChannel (--sink reply answers on it)."""
        self._replies = True

    def frames(self) -> Iterator[SourceFrame]:
        """Every client's frames as they arrive, until close() or until the last of `sessions` has ended."""
        acceptor = self._acceptor = threading.Thread(target=self._accept_clients, name="vre-tcp-accept", daemon=True)
        acceptor.start()
        try:
            while not self._closing.is_set():
                try:
                    item = self._frames.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if self._all_sessions_ended() and self._frames.empty():
                        return
                    continue
                yield item
        finally:
            self.close()
            for thread in (acceptor, *self._readers):
                thread.join(timeout=2 * POLL_SECONDS)

    def close(self) -> None:
        """Stops accepting and reading; every thread of the server ends within POLL_SECONDS. Safe from a signal
        handler: it only sets a flag (and closes the listening socket if frames() never started)."""
        self._closing.set()
        if self._acceptor is None:
            self._server.close()

    def _all_sessions_ended(self) -> bool:
        with self._lock:
            return self._sessions is not None and self.started >= self._sessions and self.connected == 0

    def _accept_clients(self) -> None:
        """The only user of the listening socket once frames() runs, so it is the one to close it (closing it
        under another thread's accept() could let that thread accept on a reused descriptor)."""
        with self._server:
            while not self._closing.is_set():
                try:
                    conn, address = self._server.accept()
                except TimeoutError:
                    continue
                except OSError as exc:  # e.g. out of file descriptors: keep serving the connected clients
                    logger.error("accepting a client failed (%s: %s); retrying", type(exc).__name__, exc)
                    self._closing.wait(POLL_SECONDS)
                    continue
                host, port = address[:2]
                peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 host in brackets
                refusal = self._admit()
                if refusal is not None:
                    self._refuse(conn, peer, *refusal)
                    continue
                reader = threading.Thread(target=self._serve_client, args=(conn, peer),
                                          name=f"vre-tcp-client {peer}", daemon=True)
                self._readers = [t for t in self._readers if t.is_alive()] + [reader]
                reader.start()

    def _admit(self) -> tuple[str, str] | None:
        """None, having counted the client in, when it may be served now; else (why for the log, why for it)."""
        with self._lock:
            if self._sessions is not None and self.started >= self._sessions:
                return f"all sessions have started (--sessions {self._sessions})", "no more sessions"
            if self.connected >= self._max_clients:
                return (f"{self.connected} clients connected (--max-clients {self._max_clients})",
                        "too many clients")
            self.started += 1
            self.connected += 1
            self.peak_connected = max(self.peak_connected, self.connected)
        return None

    def _refuse(self, conn: socket.socket, peer: str, reason: str, line: str) -> None:
        with self._lock:
            self.refused += 1
        logger.warning("client %s refused: %s", peer, reason)
        with conn, contextlib.suppress(OSError):  # it may be gone already; it is refused either way
            conn.settimeout(POLL_SECONDS)
            conn.sendall(f"VRE-REFUSED {line}\n".encode())
            conn.shutdown(socket.SHUT_WR)

    def _serve_client(self, conn: socket.socket, peer: str) -> None:
        """Reads one client's frames onto the queue until it leaves, misbehaves or the server closes."""
        logger.info("client %s connected", peer)
        receiver = FrameReceiver(conn, self._limits, self._read_timeout, self._idle_timeout, self._closing,
                                 raw_size=self._size if self._raw else None)
        reply = ReplyChannel(conn, peer, self._read_timeout) if self._replies else None
        try:
            while True:
                received = receiver.receive()
                if received is None:
                    return  # the server is closing
                header, image = received
                if self._size is not None and image.shape[:2] != self._size:
                    self._count_rejected()
                    logger.error("client %s: frame %d is %dx%d, expected %dx%d; frame skipped", peer,
                                 header.frame_id, header.width, header.height, self._size[1], self._size[0])
                    continue
                if reply is not None:
                    reply.expect()
                if not self._offer(SourceFrame(header.frame_id, image, time.perf_counter(), reply)):
                    return
        except Disconnected as end:
            if end.partial:
                self._count_rejected()
                logger.warning("client %s disconnected in the middle of a frame; session ended", peer)
            else:
                logger.info("client %s disconnected", peer)
                if reply is not None:  # it may still be reading: answer what it sent
                    reply.drain(self._read_timeout, self._closing)
        except ClientTimeout as exc:
            if exc.partial:
                self._count_rejected()
            logger.warning("client %s %s; dropped", peer, exc)
        except ProtocolError as exc:
            self._count_rejected()
            logger.error("client %s: %s; closing its connection", peer, exc)
        except OSError as exc:
            logger.error("client %s: %s: %s; closing its connection", peer, type(exc).__name__, exc)
        finally:
            with self._lock:  # before the close: a client that saw it may reconnect at once and find room
                self.connected -= 1
            if reply is not None:
                reply.close()
            conn.close()

    def _offer(self, item: SourceFrame) -> bool:
        """Waits for room on the queue (back-pressure); False when the server closed first."""
        while not self._closing.is_set():
            try:
                self._frames.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _count_rejected(self) -> None:
        with self._lock:
            self.rejected += 1


class ReplyChannel:
    """A client's connection as seen by --sink reply: the compute loop writes each result back on it while the
    client's reader thread goes on reading from it.

    Writes go through a duplicate of the socket with its own deadline (`write_timeout` seconds for a whole
    reply), so they never share the reader's short poll timeout. A client gone, or too slow to take its reply,
    is logged and its connection shut: its reader ends, the stream goes on. `pending` counts the frames it sent
    that are neither answered nor dropped yet, so a client that stopped sending can still be answered.
    """

    def __init__(self, conn: socket.socket, peer: str, write_timeout: float):
        self.peer = peer
        self._conn = conn.dup()
        self._conn.settimeout(write_timeout)
        self._write_lock = threading.Lock()
        self._done = threading.Condition()
        self._pending = 0
        self._closed = False

    def expect(self) -> None:
        """A frame of this client is on its way to the compute loop."""
        with self._done:
            self._pending += 1

    def settle(self) -> None:
        """One of its frames is answered, or never will be (a newer frame took its place)."""
        with self._done:
            self._pending -= 1
            self._done.notify_all()

    def send(self, parts: list[bytes | memoryview]) -> bool:
        """Writes one reply (the buffers in order); False when the client is gone or too slow (logged once)."""
        try:
            with self._write_lock:
                if self._closed:
                    return False
                for part in parts:
                    self._conn.sendall(part)
            return True
        except OSError as exc:  # reset, closed, or TimeoutError: it did not read for write_timeout
            logger.warning("client %s: reply not sent (%s: %s); its connection closed", self.peer,
                           type(exc).__name__, exc)
            with self._write_lock, contextlib.suppress(OSError):
                self._closed = True
                self._conn.shutdown(socket.SHUT_RDWR)  # its reader thread sees the end and leaves
            return False
        finally:
            self.settle()

    def drain(self, timeout: float, stop: threading.Event) -> None:
        """Waits (up to `timeout` s, or until `stop`) until every frame it sent has been answered or dropped."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._pending > 0 and not stop.is_set() and time.monotonic() < deadline:
                self._done.wait(POLL_SECONDS)

    def close(self) -> None:
        with self._write_lock:
            self._closed = True
            self._conn.close()


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
        self._expected = None if self._live else frame_count(self._container, self._stream)
        self._closed = False

    def frames(self) -> Iterator[SourceFrame]:
        """Decoded frames; a file that ends before its header's frame count (or whose decoding fails after
        some frames) ends the stream with a warning, as a truncated file does."""
        start, first_time, decoded = time.perf_counter(), None, 0
        try:
            for frame in self._container.decode(self._stream):
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
                yield SourceFrame(decoded, image, time.perf_counter())
                decoded += 1
        except av.FFmpegError as exc:
            if self._closed:
                return
            if self._live:  # a live stream that went quiet past its timeout has ended
                logger.info("%s: stream ended (%s)", self._target, exc)
                return
            if decoded == 0:  # nothing to stream at all: an error, not a short stream
                raise VideoError(f"{self._ended_early(decoded)}; FFmpeg: {exc}") from None
            logger.warning("%s; FFmpeg: %s", self._ended_early(decoded), exc)
            return
        if not self._closed and self._expected is not None:
            expected, exact = self._expected
            if decoded < (expected if exact else expected - 1):  # a duration-based count may be one off
                logger.warning("%s", self._ended_early(decoded))

    def _ended_early(self, decoded: int) -> str:
        expected = self._expected[0] if self._expected is not None else 0
        header = f", its header says {expected}" if expected > decoded else ""
        return f"{self._target}: ended after {decoded} frames{header} (truncated file?)"

    def close(self) -> None:
        self._closed = True


class RecordedSource:
    """Frames recorded with their times played as a stream: a folder of frames at its frame rate, a ROS bag's
    image topic at its messages' log times (frame ids are message indices). With `pace`, each frame is released
    at its time relative to the first, as it was recorded."""

    def __init__(self, timed_frames: Iterator[tuple[int, float, np.ndarray]], release: Callable[[], None],
                 size: tuple[int, int] | None, pace: bool):
        self._timed_frames, self._release = timed_frames, release
        self._size, self._pace = size, pace
        self._stop = threading.Event()
        self._started = False

    @classmethod
    def folder(cls, folder: ImageFolderSource, size: tuple[int, int] | None, pace: bool) -> RecordedSource:
        timed = ((index, index / folder.fps, image) for index, image in folder.read(range(folder.num_frames)))
        return cls(timed, folder.close, size, pace)

    @classmethod
    def bag(cls, path: str, topic: str | None, size: tuple[int, int] | None, pace: bool) -> RecordedSource:
        from ..sources.rosbag import RosbagSource

        bag = RosbagSource(path, topic)
        timed = ((index, log_time / 1e9, image) for index, log_time, image in bag.frames())
        return cls(timed, bag.close, size, pace)

    def frames(self) -> Iterator[SourceFrame]:
        self._started = True
        if self._stop.is_set():  # closed before it began
            return
        start, first = time.perf_counter(), None
        try:
            for index, seconds, image in self._timed_frames:
                if self._pace:
                    first = seconds if first is None else first
                    self._stop.wait(float(seconds - first) - (time.perf_counter() - start))
                if self._stop.is_set():
                    return
                if self._size is not None and image.shape[:2] != self._size:
                    image = cv2.resize(image, (self._size[1], self._size[0]), interpolation=cv2.INTER_AREA)
                yield SourceFrame(index, np.ascontiguousarray(image), time.perf_counter())
        finally:
            self._release()

    def close(self) -> None:
        """Ends `frames()` at its next frame (or pause); a source never iterated is released here."""
        self._stop.set()
        if not self._started:
            self._release()
