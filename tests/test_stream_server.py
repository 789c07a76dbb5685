"""The vre-tcp stream server under hostile clients: concurrency, deadlines, refusals, fuzzed bytes, a soak.

Also the two other ways a stream used to end silently: a failing sink and a truncated input file.
Every wait here is bounded by a deadline and every thread is joined with a timeout; loopback only.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from conftest import make_video, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from vre_fast import VideoError, parse_config
from vre_fast.cli import main
from vre_fast.streaming import Limits, StreamGraph, StreamRuntime, encode_frame, open_source
from vre_fast.streaming.graph import StreamResult
from vre_fast.streaming.protocol import FRAME_HEADER, ClientTimeout, Disconnected, FrameReceiver, ProtocolError
from vre_fast.streaming.sources import SourceFrame, TcpServerSource

WAIT = 10.0  # the longest any wait in this file may take before the test fails
RGB_GRAPH = {"representations": {"rgb": {"type": "rgb"}}}


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def peer_of(conn: socket.socket) -> str:
    """How the server names this client: its local address."""
    host, port = conn.getsockname()[:2]
    return f"{host}:{port}"


class Collector:
    """Runs source.frames() on a thread; the frames land on a queue."""

    def __init__(self, source: TcpServerSource):
        self.source, self.frames = source, queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        try:
            for item in self.source.frames():
                self.frames.put(item)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def next_frame(self, timeout: float = WAIT) -> SourceFrame:
        return self.frames.get(timeout=timeout)

    def stop(self) -> None:
        self.source.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive() and self.error is None, self.error


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="vre_fast")
    return caplog


def test_half_a_frame_does_not_block_another_client(server_log):
    """The first client stalls mid-frame (well inside its 30 s deadline); the second is served meanwhile."""
    source = open_source("vre-tcp://127.0.0.1:0", read_timeout=30)
    collector = Collector(source)
    port = source.address[1]
    stalled = connect(port)
    stalled.sendall(encode_frame(np.zeros((40, 40, 3), np.uint8), 0)[:2000])
    wait_until(lambda: source.connected == 1, "the stalled client to be connected")
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(3)]
    with connect(port) as good:
        for i, frame in enumerate(frames):
            good.sendall(encode_frame(frame, 100 + i))
        got = [collector.next_frame() for _ in frames]
    assert [f.frame_id for f in got] == [100, 101, 102]
    assert all(np.array_equal(f.image, frame) for f, frame in zip(got, frames))
    assert source.connected >= 1 and not any("dropped" in m for m in server_log.messages)  # still waited for
    stalled.close()
    collector.stop()


def test_stalled_and_silent_clients_are_dropped_naming_them(server_log):
    frame = np.zeros((10, 20, 3), np.uint8)
    source = open_source("vre-tcp://127.0.0.1:0", read_timeout=0.3, idle_timeout=0.3)
    collector = Collector(source)
    port = source.address[1]
    with connect(port) as staller, connect(port) as silent, connect(port) as header_only:
        staller.sendall(encode_frame(frame, 0) + encode_frame(frame, 1)[:100])  # one frame, then a third of one
        header_only.sendall(encode_frame(frame, 5)[:10])
        assert collector.next_frame().frame_id == 0
        wait_until(lambda: source.connected == 0, "the three slow clients to be dropped")
        messages = [r.getMessage() for r in server_log.records]
        assert f"client {peer_of(staller)} sent 100 of {32 + 600} bytes of frame 1 in 0.3 s; dropped" in messages
        assert f"client {peer_of(silent)} sent nothing for 0.3 s; dropped" in messages
        assert f"client {peer_of(header_only)} sent 10 of the 32 header bytes of a frame in 0.3 s; dropped" in messages
        assert staller.recv(16) == b""  # the server closed its end
    assert source.rejected == 2  # the two incomplete frames; the silent client lost no frame
    with connect(port) as good:  # and the server still serves
        good.sendall(encode_frame(frame, 7))
        assert collector.next_frame().frame_id == 7
    assert not any(r.exc_info for r in server_log.records)
    collector.stop()


def test_clients_beyond_max_clients_are_refused_visibly(server_log):
    source = open_source("vre-tcp://127.0.0.1:0", max_clients=2)
    collector = Collector(source)
    port = source.address[1]
    with connect(port) as first, connect(port) as second:
        wait_until(lambda: source.connected == 2, "two clients to be connected")
        with connect(port) as third:
            assert third.recv(64) == b"VRE-REFUSED too many clients\n"
            assert third.recv(64) == b""
            refused_as = peer_of(third)
        assert source.refused == 1
        assert f"client {refused_as} refused: 2 clients connected (--max-clients 2)" in server_log.messages
        first.sendall(encode_frame(np.ones((2, 2, 3), np.uint8), 1))  # the admitted ones are served all along
        second.sendall(encode_frame(np.ones((2, 2, 3), np.uint8), 2))
        assert {collector.next_frame().frame_id, collector.next_frame().frame_id} == {1, 2}
    wait_until(lambda: source.connected == 0, "both to leave")
    with connect(port) as later:  # room again
        later.sendall(encode_frame(np.ones((2, 2, 3), np.uint8), 3))
        assert collector.next_frame().frame_id == 3
    collector.stop()


def test_sessions_end_the_stream_and_latecomers_are_refused(server_log):
    source = open_source("vre-tcp://127.0.0.1:0", sessions=1)
    collector = Collector(source)
    port = source.address[1]
    with connect(port) as only:
        only.sendall(encode_frame(np.ones((2, 2, 3), np.uint8), 1))
        assert collector.next_frame().frame_id == 1
        with connect(port) as late:
            assert late.recv(64) == b"VRE-REFUSED no more sessions\n"
            late_peer = peer_of(late)
    collector.thread.join(WAIT)
    assert not collector.thread.is_alive(), "the stream did not end after its one session"
    assert f"client {late_peer} refused: all sessions have started (--sessions 1)" in server_log.messages
    assert source.refused == 1
    with pytest.raises(OSError):  # the server is gone
        connect(port).close()
    collector.stop()


def test_stream_cli_options_sessions_max_clients_timeouts(tmp_path: Path):
    """In-process `vre-fast stream`: A sends 2 frames then idles (dropped by --idle-timeout), B is refused
    by --max-clients 1 meanwhile, C sends 1 frame; after --sessions 2 the stream ends and exits 0."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(RGB_GRAPH))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refusal: list[bytes] = []

    def clients() -> None:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                a = connect(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
        with a:
            for i in range(2):
                a.sendall(encode_frame(np.zeros((4, 6, 3), np.uint8), i))
            with connect(port) as b:
                refusal.append(b.recv(64))
            a.recv(1)  # returns when the server drops A for idling
        with connect(port) as c:
            c.sendall(encode_frame(np.zeros((4, 6, 3), np.uint8), 2))

    thread = threading.Thread(target=clients, daemon=True)
    thread.start()
    stats = tmp_path / "stats.json"
    code = main(["stream", "-c", str(cfg), "--source", f"vre-tcp://127.0.0.1:{port}", "--sink", "null", "--policy",
                 "all", "--sessions", "2", "--max-clients", "1", "--idle-timeout", "0.3", "--read-timeout", "0.3",
                 "--stats-json", str(stats), "--quiet"])
    thread.join(WAIT)
    assert code == 0
    assert refusal == [b"VRE-REFUSED too many clients\n"]
    summary = json.loads(stats.read_text())
    assert summary["processed"] == 3 and summary["refused"] == 1 and summary["rejected"] == 0


# ---- the frame reader under arbitrary bytes ----------------------------------------------------------------------

FUZZ_LIMITS = Limits(max_height=32, max_width=32)
LARGEST_FRAME = FUZZ_LIMITS.max_height * FUZZ_LIMITS.max_width * 3
ALLOWED = (ProtocolError, Disconnected, ClientTimeout)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """Valid frames (some beyond the limits), then cut, with bytes overwritten, and garbage appended."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        parts.append(encode_frame(np.full((h, w, 3), draw(st.integers(0, 255)), np.uint8),
                                  draw(st.integers(0, 2**64 - 1))))
    data = bytearray(b"".join(parts))
    for position, value in draw(st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(0, 255)),
                                         max_size=4)):
        if data:
            data[position] = value
    data = data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    return bytes(data) + draw(st.binary(max_size=40))


FUZZ_BYTES = st.one_of(st.binary(max_size=300), mutated_frames())


def receive_all(data: bytes) -> tuple[list[tuple[int, tuple[int, ...]]], BaseException, int]:
    """Feeds `data` to a FrameReceiver through a socketpair: (frames got, the exception that ended it, the
    peak bytes allocated by any one receive() beyond what was held before it)."""
    writer, reader = socket.socketpair()
    tracemalloc.start()  # only here: tracing hypothesis itself would make the test several times slower
    try:
        writer.sendall(data)
        writer.shutdown(socket.SHUT_WR)
        receiver = FrameReceiver(reader, FUZZ_LIMITS, read_timeout=2.0, idle_timeout=2.0)
        got, peak = [], 0
        for _ in range(len(data) // (FRAME_HEADER.size + 3) + 2):  # every frame takes >= 35 bytes
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            try:
                header, image = receiver.receive()
            except ALLOWED as exc:
                return got, exc, max(peak, tracemalloc.get_traced_memory()[1] - before)
            peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
            got.append((header.frame_id, image.shape))
            assert image.nbytes == header.nbytes <= LARGEST_FRAME
            del header, image
        raise AssertionError(f"the reader did not end on {len(data)} bytes")
    finally:
        tracemalloc.stop()
        writer.close()
        reader.close()


@settings(max_examples=200, deadline=None, database=None)
@given(data=FUZZ_BYTES)
def test_frame_reader_on_arbitrary_bytes_raises_only_protocol_errors_within_limits(data: bytes):
    got, ended_by, peak = receive_all(data)
    assert isinstance(ended_by, ALLOWED)
    # one payload buffer of at most the limit, plus a few KB of exception, header and bookkeeping objects
    assert peak <= LARGEST_FRAME + 16 * 1024, f"receive() allocated {peak} bytes"
    # a good client on a fresh connection is read correctly afterwards
    good = encode_frame(np.full((32, 32, 3), 9, np.uint8), 42)
    good_got, end, _ = receive_all(good)
    assert good_got == [(42, (32, 32, 3))] and isinstance(end, Disconnected) and not end.partial


def test_frame_reader_refuses_an_oversized_header_before_allocating():
    header = FRAME_HEADER.pack(b"VRF1", 33, 32, 3, 1, 0)  # one row beyond the limit, payload never sent
    got, ended_by, peak = receive_all(header + bytes(100))
    assert got == [] and isinstance(ended_by, ProtocolError) and "33" in str(ended_by)
    assert peak < LARGEST_FRAME


def test_server_survives_fuzzed_clients_over_loopback(server_log, monkeypatch):
    """Each example: a client sends fuzzed bytes and leaves; then a good client is served, on the same server."""
    thread_errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    source = TcpServerSource("127.0.0.1", 0, None, FUZZ_LIMITS, read_timeout=2.0, idle_timeout=2.0)
    collector = Collector(source)
    port = source.address[1]
    marker = iter(range(2**62, 2**62 + 1000))

    @settings(max_examples=30, deadline=None, database=None)
    @given(data=FUZZ_BYTES)
    def one_client(data: bytes) -> None:
        with connect(port) as bad:
            bad.sendall(data)
        good_id = next(marker)
        with connect(port) as good:
            good.sendall(encode_frame(np.full((3, 5, 3), 77, np.uint8), good_id))
            for _ in range(5):  # the fuzzed client may have sent (at most 3) valid frames too; skip them
                item = collector.next_frame()
                if item.frame_id == good_id and item.image.shape == (3, 5, 3) and item.image[0, 0, 0] == 77:
                    break
            else:
                raise AssertionError(f"the good client's frame {good_id} never came")

    one_client()
    collector.stop()
    assert thread_errors == [] and not any(r.exc_info for r in server_log.records)
    assert source.connected == 0


# ---- a soak: good, stalling, silent, vanishing and surplus clients at once, with back-pressure ------------------

class RecordingSink:
    """Keeps (frame id, first pixel) of every result; a little slow, so the `all` policy pushes back."""

    name = "record"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def send(self, result: StreamResult) -> None:
        self.seen.append((result.frame_id, int(result.outputs["rgb"][0, 0, 0])))
        time.sleep(0.002)

    def close(self) -> None:
        pass


def test_soak_every_good_frame_arrives_bad_clients_dropped_memory_bounded(server_log):
    good_clients, frames_each, shape = 3, 30, (96, 128, 3)
    max_clients, queue_size = 9, 2
    frame_bytes = int(np.prod(shape))
    payloads = {c: [encode_frame(np.full(shape, 10 + c, np.uint8), 1000 * c + i) for i in range(frames_each)]
                for c in range(good_clients)}
    partial = encode_frame(np.zeros(shape, np.uint8), 999)[: FRAME_HEADER.size + frame_bytes // 2]
    graph = StreamGraph(parse_config(RGB_GRAPH))
    source = TcpServerSource("127.0.0.1", 0, None, Limits(), max_clients=max_clients, read_timeout=0.5,
                             idle_timeout=1.0, queue_size=queue_size)
    sink = RecordingSink()
    runtime = StreamRuntime(graph, source, sink, policy="all")
    port = source.address[1]
    live_readers: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.005):
            live_readers.append(sum(t.name.startswith("vre-tcp-client") for t in threading.enumerate()))

    sampler = threading.Thread(target=sample, daemon=True)
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(stats=runtime.run()), daemon=True)
    tracemalloc.start()
    try:
        sampler.start()
        runner.start()
        good = [connect(port) for _ in range(good_clients)]
        stallers, silent, vanishing = ([connect(port) for _ in range(2)] for _ in range(3))
        wait_until(lambda: source.connected == max_clients, f"{max_clients} clients to be connected")
        surplus = [connect(port) for _ in range(2)]
        assert [s.recv(64) for s in surplus] == [b"VRE-REFUSED too many clients\n"] * 2
        names = {kind: [peer_of(conn) for conn in conns] for kind, conns in
                 (("stalled", stallers), ("silent", silent), ("surplus", surplus))}

        def send_all(conn: socket.socket, frames: list[bytes]) -> None:
            with conn:
                for payload in frames:
                    conn.sendall(payload)

        senders = [threading.Thread(target=send_all, args=(conn, payloads[c])) for c, conn in enumerate(good)]
        for sender in senders:
            sender.start()
        for conn in (*stallers, *vanishing):
            conn.sendall(partial)
        for conn in vanishing:
            conn.close()
        for sender in senders:
            sender.join(WAIT)
        expected = {(1000 * c + i, 10 + c) for c in range(good_clients) for i in range(frames_each)}
        wait_until(lambda: expected <= set(sink.seen) and source.connected == 0,
                   "every good frame, and every bad client dropped")
        runtime.stop()
        runner.join(WAIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sampling.set()
        sampler.join(WAIT)
        for conn in (*stallers, *silent, *surplus):
            conn.close()
    stats = result["stats"]
    assert sorted(sink.seen) == sorted(expected)  # nothing lost, nothing twice, nothing of the bad clients
    assert stats.processed == good_clients * frames_each and stats.dropped == 0
    assert stats.rejected == 4 and stats.refused == 2  # 2 stalled + 2 vanished mid-frame; 2 surplus
    messages = server_log.messages
    for name in names["stalled"]:
        assert (f"client {name} sent {len(partial)} of {FRAME_HEADER.size + frame_bytes} bytes of frame 999 "
                f"in 0.5 s; dropped") in messages
    for name in names["silent"]:
        assert f"client {name} sent nothing for 1 s; dropped" in messages
    for name in names["surplus"]:
        assert f"client {name} refused: 9 clients connected (--max-clients 9)" in messages
    assert sum("disconnected in the middle of a frame" in m for m in messages) == 2
    # bounds: reader threads, queued frames, and so the memory held
    assert source.peak_connected == max_clients and max(live_readers) <= max_clients
    assert runtime.policy.max_depth <= 2
    held_frames = max_clients + queue_size + runtime.policy.max_depth + 3  # + in the runtime's hand, compute, output
    assert peak <= held_frames * frame_bytes + 512 * 1024, f"peak {peak} bytes"
    assert peak < good_clients * frames_each * frame_bytes / 2  # far below what an unbounded backlog would hold


# ---- the other silent endings: a failing sink, a truncated file ------------------------------------------------

def test_a_failing_sink_ends_the_stream_with_exit_1_naming_it(video: Path, tmp_path: Path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(RGB_GRAPH))
    peer = socket.create_server(("127.0.0.1", 0))
    peer.settimeout(WAIT)
    port = peer.getsockname()[1]

    def hang_up() -> None:
        conn, _ = peer.accept()
        conn.close()

    closer = threading.Thread(target=hang_up, daemon=True)
    closer.start()
    code = main(["stream", "-c", str(cfg), "--source", str(video), "--sink", f"vre-tcp://127.0.0.1:{port}",
                 "--policy", "all", "--quiet"])
    closer.join(WAIT)
    peer.close()
    err = capsys.readouterr().err
    assert code == 1
    assert f"vre-fast: error: sink vre-tcp://127.0.0.1:{port}: " in err
    assert "BrokenPipeError" in err or "ConnectionResetError" in err
    assert "processed" in err and "Traceback" not in err  # the stats, then one line


def faststart_copy(src: Path, dst: Path) -> Path:
    """`src` remuxed with its index (moov) first, so a truncated copy still opens, as a cut download would."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


@pytest.mark.parametrize("cut", ["60% of the bytes", "at a packet boundary"])
def test_a_truncated_file_ends_the_stream_with_a_warning(tmp_path: Path, server_log, cut: str):
    full = faststart_copy(make_video(tmp_path / "v.mp4", num_frames=30), tmp_path / "full.mp4")
    data = full.read_bytes()
    if cut == "at a packet boundary":  # the demuxer just stops: no FFmpeg error, only fewer frames
        with av.open(str(full)) as c:
            end = [p.pos for p in c.demux(video=0) if p.size][20]
    else:  # a packet cut in half: FFmpeg raises while decoding
        end = int(len(data) * 0.6)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[:end])
    source = open_source(str(truncated))
    got = [f.frame_id for f in source.frames()]
    assert 0 < len(got) < 30 and got == list(range(len(got)))
    warnings = [r.getMessage() for r in server_log.records if r.name == "vre_fast" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{truncated}: ended after {len(got)} frames, its header says 30 (truncated file?)")
    server_log.clear()
    assert len(list(open_source(str(full)).frames())) == 30  # a whole file: no warning
    assert not [r for r in server_log.records if r.name == "vre_fast"]


def test_a_truncated_mkv_without_a_frame_count_warns_too(tmp_path: Path, server_log):
    """mkv (like ts and webm) carries no frame count: the duration tells how many frames to expect."""
    full = make_video(tmp_path / "v.mkv", num_frames=60)
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    got = list(open_source(str(truncated)).frames())
    warnings = [r.getMessage() for r in server_log.records if r.name == "vre_fast" and r.levelno == logging.WARNING]
    assert 0 < len(got) < 60 and len(warnings) == 1
    assert warnings[0].startswith(f"{truncated}: ended after {len(got)} frames, its header says 60")
    server_log.clear()
    assert len(list(open_source(str(full)).frames())) == 60
    assert not [r for r in server_log.records if r.name == "vre_fast" and r.levelno == logging.WARNING]


class FailingContainer:
    """A container whose decoding fails (as FFmpeg does on a corrupt packet) after `good` frames."""

    def __init__(self, container: av.container.InputContainer, good: int):
        self._container, self._good = container, good

    def decode(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        for count, frame in enumerate(self._container.decode(stream)):
            if count == self._good:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield frame


@pytest.mark.parametrize("good", [0, 5])
def test_a_decoding_error_ends_the_stream_with_a_warning_or_fails_before_any_frame(video: Path, server_log, good):
    source = open_source(str(video))
    source._container = FailingContainer(source._container, good)  # FFmpeg's error, where we want it
    if good == 0:  # nothing decodable: an error naming the file, as before
        with pytest.raises(VideoError, match=rf"{video}: ended after 0 frames, its header says 24 .*Invalid data"):
            list(source.frames())
        return
    assert [f.frame_id for f in source.frames()] == list(range(good))
    assert [r.getMessage() for r in server_log.records if r.levelno == logging.WARNING] == [
        f"{video}: ended after 5 frames, its header says 24 (truncated file?); FFmpeg: [Errno 1094995529] Invalid data "
        "found when processing input"]
