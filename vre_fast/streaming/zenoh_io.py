"""Zenoh pub/sub for `vre-fast stream` (the `[zenoh]` extra; this module is imported only for zenoh:// URLs).

    --source zenoh://KEY[?listen=ENDPOINTS][&connect=ENDPOINTS]   subscribes to KEY: one frame per sample
    --sink zenoh://PREFIX                                          publishes each representation on PREFIX/<name>

Payloads are VRO1 records (protocol.py): a frame is a record of one HxWx3 uint8 array (its frame id in the
header), a result a record of one representation's array, exactly what `vre-fast run` stores. One format
either way, self-describing (name, dtype, shape), read by the same bounded parser as stdout:vre and vre-tcp.

The session is a peer that listens on 127.0.0.1 only (tcp/127.0.0.1:7447 unless the URL names endpoints)
with multicast scouting off, so nothing is announced to or reached from outside the machine; another
process joins by connecting to that endpoint (or to a zenoh router, e.g. rmw_zenoh's, with ?connect=).
A source and a sink in one process share one session (the endpoints are given on the --source URL).

Bounds: zenoh is told to reassemble no message over twice the largest frame record (--max-frame-size; it
enforces that only for large messages: ones of 10 MB arrive under a 19 KB cap, see the README); a sample
over the largest frame record, or malformed (wrong magic, cut short, trailing bytes, wrong dtype or shape,
too large), is logged naming its key, counted as rejected and skipped, and serving goes on. At most
`queue_size` samples wait between zenoh's thread and the stream; when they are full zenoh's thread waits
(back-pressure reaches publishers that block on congestion; the `latest` policy drains the queue at once).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..errors import VreError
from .protocol import POLL_SECONDS, Limits, ProtocolError, decode_frame_record, encode_record
from .sources import SourceFrame

if TYPE_CHECKING:
    import zenoh

    from .graph import StreamGraph, StreamResult

__all__ = ["DEFAULT_LISTEN", "ZenohPeer", "ZenohSink", "ZenohSource", "ZenohUrl", "peer_config", "wait_for_subscriber"]

logger = logging.getLogger("vre_fast")

DEFAULT_LISTEN = "tcp/127.0.0.1:7447"
# a peer that joins others (?connect=) listens here, on loopback: a zenoh 1.x router passes no data between peers that
# only connect, so peers that meet through one (its gossip) must be able to link to each other directly
JOINING_LISTEN = "tcp/127.0.0.1:0"


def _zenoh():  # noqa: ANN202 - the module, imported on first use
    try:
        import zenoh
    except ImportError:
        raise VreError("zenoh:// needs the zenoh package: pip install 'vre-fast[zenoh]' (eclipse-zenoh)") from None
    return zenoh


def _message(exc: Exception) -> str:
    """zenoh's error without the Rust source locations it appends (" at /root/.cargo/...rs:61.")."""
    return re.sub(r" at \S+\.rs:\d+\.?", "", str(exc)).strip()


@dataclass(frozen=True)
class ZenohUrl:
    """zenoh://KEY?listen=E1,E2&connect=E3: a key expression and the endpoints of the session."""

    key: str
    listen: tuple[str, ...] = ()
    connect: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str, option: str) -> ZenohUrl:
        rest = spec[len("zenoh://"):]
        key = rest.split("?", 1)[0].strip("/")
        query = parse_qs(urlsplit(spec).query, keep_blank_values=True)
        unknown = sorted(set(query) - {"listen", "connect"})
        if unknown:
            raise VreError(f"{option} {spec}: unknown option {unknown[0]!r} (known: listen, connect)")
        if not key:
            raise VreError(f"{option} {spec}: give a key expression, e.g. zenoh://robot/camera")
        try:
            _zenoh().KeyExpr(key)
        except _zenoh().ZError as exc:
            raise VreError(f"{option} {spec}: {key!r} is not a zenoh key expression ({_message(exc)})") from None

        def endpoints(name: str) -> tuple[str, ...]:
            found = tuple(e for value in query.get(name, []) for e in value.split(",") if e)
            for endpoint in found:  # zenoh's own parser, here, so that the error names the URL
                try:
                    _zenoh().Config().insert_json5(f"{name}/endpoints", json.dumps([endpoint]))
                except _zenoh().ZError:
                    raise VreError(f"{option} {spec}: {endpoint!r} is not a zenoh endpoint (PROTOCOL/ADDRESS, e.g. "
                                   f"{DEFAULT_LISTEN})") from None
            return found

        return cls(key, endpoints("listen"), endpoints("connect"))


def peer_config(url: ZenohUrl, limits: Limits) -> zenoh.Config:
    """A peer that listens where the URL says (by default only on DEFAULT_LISTEN, loopback; with ?connect= on an
    ephemeral loopback port, JOINING_LISTEN), connects where it says, scouts nothing by multicast, and is told
    to reassemble no message over twice the largest frame record."""
    config = _zenoh().Config()
    listen = list(url.listen) or ([JOINING_LISTEN] if url.connect else [DEFAULT_LISTEN])
    for key, value in (("mode", "peer"), ("listen/endpoints", listen), ("connect/endpoints", list(url.connect)),
                       ("scouting/multicast/enabled", False),
                       ("transport/link/rx/max_message_size", 2 * limits.max_frame_record)):
        config.insert_json5(key, json.dumps(value))
    return config


def wait_for_subscriber(session: zenoh.Session, publisher: zenoh.Publisher, timeout: float) -> None:
    """For a program that publishes frames to a stream: returns once `session` is linked to a peer or a router
    and `publisher` has a subscriber; TimeoutError after `timeout` seconds. (Before a link is up zenoh may report
    a match that no put reaches yet, so the link is waited for first.)"""
    deadline = time.monotonic() + timeout
    while not ((session.info.peers_zid() or session.info.routers_zid()) and publisher.matching_status.matching):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no subscriber of {publisher.key_expr} within {timeout:g} s")
        time.sleep(0.01)


class ZenohPeer:
    """One zenoh session (peer_config's), shared by the source and sink that acquire it; the last release closes
    it."""

    def __init__(self, url: ZenohUrl, limits: Limits, option: str):
        zenoh = _zenoh()
        config = peer_config(url, limits)
        where = ", ".join([f"listening on {e}" for e in json.loads(config.get_json("listen/endpoints"))]
                          + [f"connecting to {e}" for e in url.connect])
        try:
            self.session = zenoh.open(config)
        except zenoh.ZError as exc:
            raise VreError(f"{option} zenoh://{url.key}: cannot open a zenoh session {where}: "
                           f"{_message(exc)}") from None
        logger.info("zenoh peer %s", where)
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> zenoh.Session:
        with self._lock:
            self._users += 1
        return self.session

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self.session.close()


class ZenohSource:
    """Frames from a zenoh subscription: each sample a VRO1 record of one HxWx3 uint8 array.

    zenoh's thread only checks the sample's size and queues its bytes (at most `queue_size`, waiting when full);
    frames() parses them, so a malformed sample costs the stream one log line and a count in `rejected`.
    """

    def __init__(self, url: ZenohUrl, size: tuple[int, int] | None, limits: Limits, peer: ZenohPeer | None = None,
                 queue_size: int = 2):
        self.key, self._size, self._limits = url.key, size, limits
        self.peer = peer if peer is not None else ZenohPeer(url, limits, "--source")
        self._samples: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.rejected = 0  # samples rejected: oversized, malformed, of the wrong size
        self._subscriber = self.peer.acquire().declare_subscriber(url.key, self._on_sample)
        self._reading = False
        logger.info("subscribed to zenoh key %s", url.key)

    def _on_sample(self, sample: zenoh.Sample) -> None:
        """On zenoh's thread: the size check needs no copy; the bytes are copied once, then queued."""
        key, size = str(sample.key_expr), len(sample.payload)
        if size > self._limits.max_frame_record:
            self._reject(key, f"a frame record of {size} bytes, more than the {self._limits.max_frame_record} of a "
                              f"{self._limits.max_width}x{self._limits.max_height} frame")
            return
        item = (key, sample.payload.to_bytes())
        while not self._closing.is_set():
            try:
                self._samples.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def frames(self) -> Iterator[SourceFrame]:
        """Every valid sample's frame, until close()."""
        self._reading = True
        try:
            while not self._closing.is_set():
                try:
                    key, data = self._samples.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                received = time.perf_counter()
                try:
                    frame_id, image = decode_frame_record(data, self._limits)
                except ProtocolError as exc:
                    self._reject(key, str(exc))
                    continue
                if self._size is not None and image.shape[:2] != self._size:
                    self._reject(key, f"frame {frame_id} is {image.shape[1]}x{image.shape[0]}, expected "
                                      f"{self._size[1]}x{self._size[0]}")
                    continue
                yield SourceFrame(frame_id, image, received)
        finally:
            self._closing.set()
            self._shut()

    def close(self) -> None:
        """Safe from a signal handler: sets a flag; frames() undeclares the subscription when it sees it (or this
        does, if frames() never ran)."""
        self._closing.set()
        if not self._reading:
            self._shut()

    def _shut(self) -> None:
        with self._lock:
            subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None:
            subscriber.undeclare()
            self.peer.release()

    def _reject(self, key: str, why: str) -> None:
        with self._lock:
            self.rejected += 1
        logger.error("zenoh %s: %s; sample skipped", key, why)


class ZenohSink:
    """Publishes each chosen representation's stored array on PREFIX/<name>, one VRO1 record per frame.

    Publishers block on congestion (zenoh bounds the wait and closes a link that stays blocked), so a slow
    subscriber is not silently skipped; express: sent at once, not batched.
    """

    def __init__(self, url: ZenohUrl, graph: StreamGraph, peer: ZenohPeer | None = None):
        zenoh = _zenoh()
        self.name = f"zenoh://{url.key}"
        self._zerror = zenoh.ZError
        self.peer = peer if peer is not None else ZenohPeer(url, Limits(), "--sink")
        session = self.peer.acquire()
        encoding = zenoh.Encoding.APPLICATION_OCTET_STREAM.with_schema("vro1")
        self._publishers = {name: session.declare_publisher(f"{url.key}/{name}", encoding=encoding,
                                                            congestion_control=zenoh.CongestionControl.BLOCK,
                                                            express=True)
                            for name in graph.chosen}
        logger.info("publishing on zenoh keys %s/{%s}", url.key, ",".join(graph.chosen))

    def send(self, result: StreamResult) -> None:
        compute_ns = int(result.compute_seconds * 1e9)
        for name, array in result.outputs.items():
            try:
                self._publishers[name].put(encode_record(result.frame_id, {name: array}, compute_ns))
            except self._zerror as exc:  # the session closed under it: the runtime's sink error (exit 1)
                raise ConnectionError(f"zenoh put on {self.name}/{name}: {_message(exc)}") from None

    def close(self) -> None:
        publishers, self._publishers = self._publishers, {}
        if publishers:
            for publisher in publishers.values():
                publisher.undeclare()
            self.peer.release()
