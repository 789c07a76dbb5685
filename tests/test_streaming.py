"""Streaming runtime: round trips on loopback, the newest-frame policy, malformed input, the embedding API."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frames_of, make_video

from vre_fast import ConfigError, RunOptions, VreError, parse_config, register_representation, run
from vre_fast.cli import main
from vre_fast.representation import ComputeBatch, Representation
from vre_fast.streaming import Limits, StreamGraph, StreamRuntime, encode_frame, open_sink, open_source, read_result
from vre_fast.streaming.policies import LatestFrameSlot
from vre_fast.streaming.protocol import Disconnected
from vre_fast.streaming.sinks import NullSink
from vre_fast.streaming.stats import FrameTiming, LatencyStats

GRAPH = {"representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
                             "edges": {"type": "edges_canny", "parameters": {"threshold1": 60}}}}
TIMEOUT = 60


def read_all_results(data: bytes) -> list:
    stream, results = io.BytesIO(data), []
    while True:
        try:
            results.append(read_result(stream))
        except Disconnected:
            return results


def test_stdin_to_stdout_equals_the_batch_engine(video: Path, tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(__import__("yaml").safe_dump(GRAPH))
    run(video, parse_config(GRAPH), tmp_path / "out", RunOptions(progress=False))
    frames = frames_of(video)
    h, w = frames[0].shape[:2]
    proc = subprocess.run([sys.executable, "-m", "vre_fast", "stream", "-c", str(cfg), "--source", "stdin",
                           "--size", f"{w}x{h}", "--sink", "stdout:vre", "--policy", "all", "--quiet"],
                          input=b"".join(f.tobytes() for f in frames), capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode()
    results = read_all_results(proc.stdout)
    assert [r.frame_id for r in results] == list(range(len(frames)))
    for r in results:
        assert set(r.arrays) == {"rgb", "hsv", "edges"}
        for name, arr in r.arrays.items():
            with np.load(tmp_path / "out" / name / "npz" / f"{r.frame_id}.npz") as stored:
                assert np.array_equal(arr, stored["arr_0"]) and arr.dtype == stored["arr_0"].dtype, name
    assert b"processed" in proc.stderr and b"p99" in proc.stderr


class ResultCollector:
    """A loopback TCP server that reads framed results until the sender disconnects."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(TIMEOUT)
        self.port = self.server.getsockname()[1]
        self.results: list = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rb") as stream:
            while True:
                try:
                    self.results.append(read_result(stream))
                except Disconnected:
                    return


def send_frames(port: int, frames: list[np.ndarray], delay: float = 0.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        for i, f in enumerate(frames):
            conn.sendall(encode_frame(f, i, time.perf_counter_ns()))
            time.sleep(delay)


def test_tcp_round_trip(video: Path):
    frames = frames_of(video)[:8]
    graph = StreamGraph(parse_config(GRAPH), ["hsv", "edges"])
    source = open_source("vre-tcp://127.0.0.1:0", sessions=1)
    collector = ResultCollector()
    runtime = StreamRuntime(graph, source, open_sink(f"vre-tcp://127.0.0.1:{collector.port}", graph), policy="all")
    sender = threading.Thread(target=send_frames, args=(source.address[1], frames))
    sender.start()
    stats = runtime.run()
    sender.join(TIMEOUT)
    collector.thread.join(TIMEOUT)
    assert stats.processed == 8 and stats.dropped == 0
    assert [r.frame_id for r in collector.results] == list(range(8))
    expected = StreamGraph(parse_config(GRAPH), ["hsv", "edges"])
    for r, frame in zip(collector.results, frames):
        direct = expected.push(frame, r.frame_id)
        for name in ("hsv", "edges"):
            assert np.array_equal(r.arrays[name], direct.outputs[name])
    assert set(stats.percentiles()) == {"wait", "compute", "send", "total"}


def test_latency_percentiles_are_milliseconds_over_the_kept_window():
    stats = LatencyStats(window=100)
    for i in range(150):  # waits of 0..149 ms; the first 50 frames fall out of the window
        stats.add(FrameTiming(i, received_at=0.0, wait=i / 1000, compute=0.002, send=0.0))
    p = stats.percentiles()
    assert stats.processed == 150
    assert p["wait"] == {"p50": pytest.approx(99.5), "p99": pytest.approx(148.01)}  # over 50..149 ms
    assert p["compute"] == {"p50": pytest.approx(2.0), "p99": pytest.approx(2.0)}
    assert p["total"] == {"p50": pytest.approx(101.5), "p99": pytest.approx(150.01)}


@pytest.mark.slow  # about 6 s: H.264 encoding and a UDP receiver's timeouts
def test_udp_round_trip_through_pyav(video: Path, tmp_path: Path):
    """Pictures of `rgb` encoded as H.264 in MPEG-TS over UDP on loopback, decoded by a PyAV receiver."""
    frames = frames_of(make_video(tmp_path / "long.mp4", num_frames=60, height=64, width=96))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free UDP port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received: list[np.ndarray] = []

    def receive() -> None:
        url = f"udp://127.0.0.1:{port}?timeout=5000000&overrun_nonfatal=1&fifo_size=1000000"
        with av.open(url, options={"probesize": "200000", "analyzeduration": "500000"}, timeout=10) as c:
            try:
                for frame in c.decode(video=0):
                    received.append(frame.to_ndarray(format="rgb24"))
            except av.FFmpegError:
                pass  # the sender stopped: read timeout

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    time.sleep(0.5)
    graph = StreamGraph(parse_config(GRAPH), ["rgb"])
    source = open_source(str(tmp_path / "long.mp4"))
    sink = open_sink(f"udp://127.0.0.1:{port}?pkt_size=1316", graph, fps=30)
    stats = StreamRuntime(graph, source, sink, policy="all").run()
    receiver.join(TIMEOUT)
    assert stats.processed == 60
    assert len(received) >= 30, f"only {len(received)} frames came back over UDP"
    for picture in received[-10:]:  # lossy: each decoded picture is close to one of the sent frames
        mse = min(np.mean((picture.astype(float) - f.astype(float)) ** 2) for f in frames)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 25


def test_tcp_server_survives_malformed_oversized_truncated_and_wrong_size_frames():
    good = np.full((6, 8, 3), 7, np.uint8)
    source = open_source("vre-tcp://127.0.0.1:0", size=(6, 8), limits=Limits(max_height=100, max_width=100),
                         sessions=5)
    port = source.address[1]

    def clients() -> None:
        for payload in (b"GARBAGE!" * 8,  # bad magic
                        encode_frame(np.zeros((1, 1, 3), np.uint8), 1)[:12] + (10**6).to_bytes(4, "little")
                        + encode_frame(np.zeros((1, 1, 3), np.uint8), 1)[16:],  # width 1000000: oversized
                        encode_frame(good, 2)[:40],  # header + a few bytes, then gone: truncated
                        encode_frame(np.zeros((4, 4, 3), np.uint8), 3) + encode_frame(good, 4)):  # wrong size, good
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
                conn.sendall(payload)
        send_frames(port, [good])  # and the server still serves a well-behaved client

    thread = threading.Thread(target=clients, daemon=True)
    thread.start()
    got = list(source.frames())
    thread.join(TIMEOUT)
    assert sorted(f.frame_id for f in got) == [0, 4] and all(np.array_equal(f.image, good) for f in got)
    assert source.rejected == 4
    source.close()


def test_tcp_server_binds_loopback_by_default():
    source = open_source("vre-tcp://:0", sessions=0)
    assert source.address[0] == "127.0.0.1"
    source.close()


@register_representation("test_slow_model")
class SlowModel(Representation):
    def compute(self, batch: ComputeBatch) -> np.ndarray:
        time.sleep(0.03)
        return batch.frames[..., 0].astype(np.float32)


class WatchedSlot(LatestFrameSlot):
    """The newest-frame slot, noting at each take the frame taken and the newest frame put so far."""

    def __init__(self) -> None:
        super().__init__()
        self.newest_put = -1
        self.takes: list[tuple[int, int]] = []

    def put(self, item) -> None:
        with self._cond:
            self.newest_put = item.frame_id
            super().put(item)

    def get(self, timeout: float | None = None):
        with self._cond:
            item = super().get(timeout)
            if item is not None:
                self.takes.append((item.frame_id, self.newest_put))
            return item


def test_fast_source_slow_model_drops_frames_and_holds_one():
    graph = StreamGraph(parse_config({"representations": {"slow": {"type": "test_slow_model"}}}))
    source = open_source("vre-tcp://127.0.0.1:0", sessions=1)
    frames = [np.full((32, 32, 3), i, np.uint8) for i in range(60)]
    runtime = StreamRuntime(graph, source, NullSink(), policy="latest")
    runtime.policy = slot = WatchedSlot()
    sender = threading.Thread(target=send_frames, args=(source.address[1], frames))
    sender.start()
    stats = runtime.run()
    sender.join(TIMEOUT)
    assert stats.dropped > 0 and stats.processed + stats.dropped == 60
    assert runtime.policy.max_depth == 1  # never more than one frame waiting: memory stays flat
    # no backlog: each frame computed was the newest that had arrived, and the last one is never dropped
    assert [taken for taken, newest in slot.takes if taken != newest] == [] and slot.takes[-1][0] == 59


@register_representation("test_failing_warm_up")
class FailingWarmUp(Representation):
    """Fails on its first frame, the warm-up's; counts its teardowns."""

    teardowns = 0

    def prepare(self, sample: ComputeBatch) -> None:
        raise VreError("no engine fits this frame size")

    def teardown(self) -> None:
        type(self).teardowns += 1

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.frames[..., 0]


def test_a_failing_warm_up_still_tears_the_graph_down(tmp_path: Path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(__import__("yaml").safe_dump({"representations": {"x": {"type": "test_failing_warm_up"}}}))
    FailingWarmUp.teardowns = 0
    assert main(["stream", "-c", str(cfg), "--source", "stdin", "--size", "8x8", "--sink", "null", "--quiet"]) == 1
    assert "vre-fast: error: no engine fits this frame size" in capsys.readouterr().err
    assert FailingWarmUp.teardowns == 1


def test_embedding_api(video: Path):
    frames = frames_of(video)
    with StreamGraph(parse_config(GRAPH), ["hsv"], size=frames[0].shape[:2]) as graph:
        result = graph.push(frames[0])
        assert set(result.outputs) == {"hsv"} and set(result.seconds) == {"hsv"} and result.compute_seconds > 0
        assert graph.render(result).shape == (*frames[0].shape[:2], 3)
        with pytest.raises(VreError, match=r"frame 1: size 4x4, expected 64x48"):
            graph.push(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"needs the next frame"):
        StreamGraph(parse_config({"representations": {"f": {"type": "optical_flow_classical"}}}))
    with pytest.raises(ConfigError, match=r"--representations: unknown \['nope'\]"):
        StreamGraph(parse_config(GRAPH), ["nope"])


def test_sigint_stops_a_waiting_server_cleanly(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(__import__("yaml").safe_dump(GRAPH))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "vre_fast", "stream", "-c", str(cfg), "--source",
                             f"vre-tcp://127.0.0.1:{port}", "--sink", "null"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    send_frames(port, [np.zeros((8, 8, 3), np.uint8)] * 3)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "processed" in err


def test_tcp_round_trip_of_full_hd_frames():
    """Results of several MB must arrive whole (a socket write may be partial)."""
    frames = [np.random.default_rng(i).integers(0, 256, (1080, 1920, 3), dtype=np.uint8) for i in range(2)]
    graph = StreamGraph(parse_config({"representations": {"rgb": {"type": "rgb"}}}))
    source = open_source("vre-tcp://127.0.0.1:0", sessions=1)
    collector = ResultCollector()
    runtime = StreamRuntime(graph, source, open_sink(f"vre-tcp://127.0.0.1:{collector.port}", graph), policy="all")
    sender = threading.Thread(target=send_frames, args=(source.address[1], frames))
    sender.start()
    runtime.run()
    sender.join(TIMEOUT)
    collector.thread.join(TIMEOUT)
    assert [np.array_equal(r.arrays["rgb"], f) for r, f in zip(collector.results, frames)] == [True, True]
