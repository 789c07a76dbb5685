"""Latency the streaming runtime adds over the graph's pure compute time, per transport, on loopback.

    python bench/stream_latency.py [--frames 100] [--size 960x540] [--video examples/bikes.mp4] [--rows zenoh,...]

Runs `vre-fast stream` as a separate process with the rgb/hsv/edges graph, and a client here that
sends one frame, waits for its result, then sends the next (so nothing queues):
  - stdin/stdout: raw frames in, framed results out;
  - vre-tcp: framed frames to the server, framed results back on a second connection;
  - vre-tcp reply: framed frames in and framed results back on the same connection (--sink reply);
  - zenoh: frames published as VRO1 records on one key, each representation back on its own key (peers on
    loopback; needs the [zenoh] extra).
Per frame, the client's round trip minus the compute time the result reports is what the runtime and
the transport add. For UDP (H.264/MPEG-TS both ways, decoded and encoded by PyAV) there is no
one-to-one round trip; its row reports the runtime's own measure (time waiting + sending, from
--stats-json), which the raw rows also report.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import yaml
from _frames import EXAMPLE, describe, example_frames

from vre_fast.h264 import add_h264_stream
from vre_fast.streaming import encode_frame, read_result
from vre_fast.streaming.protocol import ResultMessage, decode_record, encode_record

GRAPH = {"representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"}}}
OUTPUTS = ["rgb", "hsv", "edges"]  # what the stream sends back (set per row in main)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stream_cmd(cfg: Path, source: str, sink: str, size: str, stats: Path) -> list[str]:
    return [sys.executable, "-m", "vre_fast", "stream", "-c", str(cfg), "--source", source, "--sink", sink,
            "--size", size, "--policy", "all", "--quiet", "--stats-json", str(stats),
            "--representations", ",".join(OUTPUTS)]


def ping_pong(send, receive, frames: list[np.ndarray]) -> np.ndarray:  # noqa: ANN001
    """Added seconds per frame: client round trip minus the compute the result reports."""
    added = []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        send(i, frame)
        result = receive()
        added.append(time.perf_counter() - start - result.compute_ns / 1e9)
        assert result.frame_id == i
    return np.array(added[3:])  # the first frames include warm-up


def run_stdio(cfg: Path, frames: list[np.ndarray], size: str, stats: Path) -> np.ndarray:
    proc = subprocess.Popen(stream_cmd(cfg, "stdin", "stdout:vre", size, stats), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        def send(i: int, frame: np.ndarray) -> None:
            proc.stdin.write(frame.data)
            proc.stdin.flush()

        return ping_pong(send, lambda: read_result(proc.stdout), frames)
    finally:
        proc.stdin.close()
        proc.wait(60)


def run_tcp(cfg: Path, frames: list[np.ndarray], size: str, stats: Path) -> np.ndarray:
    in_port = free_port()
    results = socket.create_server(("127.0.0.1", 0))
    proc = subprocess.Popen([*stream_cmd(cfg, f"vre-tcp://127.0.0.1:{in_port}",
                                         f"vre-tcp://127.0.0.1:{results.getsockname()[1]}", size, stats),
                             "--sessions", "1"])
    try:
        back, _ = results.accept()
        for _ in range(200):
            try:
                out = socket.create_connection(("127.0.0.1", in_port))
                break
            except OSError:
                time.sleep(0.05)
        out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = back.makefile("rb")
        added = ping_pong(lambda i, f: out.sendall(encode_frame(f, i)), lambda: read_result(reader), frames)
        out.close()
        return added
    finally:
        proc.wait(60)
        results.close()


def connect_retrying(port: int) -> socket.socket:
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def run_tcp_reply(cfg: Path, frames: list[np.ndarray], size: str, stats: Path) -> np.ndarray:
    port = free_port()
    proc = subprocess.Popen([*stream_cmd(cfg, f"vre-tcp://127.0.0.1:{port}", "reply", size, stats), "--sessions", "1"])
    try:
        conn = connect_retrying(port)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn, conn.makefile("rb") as reader:
            return ping_pong(lambda i, f: conn.sendall(encode_frame(f, i)), lambda: read_result(reader), frames)
    finally:
        proc.wait(60)


def run_zenoh(cfg: Path, frames: list[np.ndarray], size: str, stats: Path) -> np.ndarray:
    import zenoh

    from vre_fast.streaming import Limits
    from vre_fast.streaming.zenoh_io import ZenohUrl, peer_config, wait_for_subscriber

    port = free_port()
    proc = subprocess.Popen(stream_cmd(cfg, f"zenoh://bench/frames?listen=tcp/127.0.0.1:{port}", "zenoh://bench/out",
                                       size, stats))
    results: queue.Queue[ResultMessage] = queue.Queue()
    session = zenoh.open(peer_config(ZenohUrl("-", connect=(f"tcp/127.0.0.1:{port}",)), Limits()))
    subscriber = session.declare_subscriber("bench/out/**",
                                            lambda sample: results.put(decode_record(sample.payload.to_bytes())))
    publisher = session.declare_publisher("bench/frames", congestion_control=zenoh.CongestionControl.BLOCK,
                                          express=True)
    try:
        wait_for_subscriber(session, publisher, 60)  # the stream warms up first
        time.sleep(0.2)  # and its publishers have seen our subscriber

        def receive() -> ResultMessage:
            got = [results.get(timeout=30) for _ in OUTPUTS]  # one per representation, each on its own key
            assert len({m.frame_id for m in got}) == 1
            return got[0]

        return ping_pong(lambda i, f: publisher.put(encode_record(i, {"rgb": f})), receive, frames)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        subscriber.undeclare()
        publisher.undeclare()
        session.close()


def run_udp(cfg: Path, frames: list[np.ndarray], size: str, stats: Path) -> None:
    in_port, out_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    received = []

    def receive() -> None:
        url = f"udp://127.0.0.1:{out_port}?timeout=3000000&overrun_nonfatal=1&fifo_size=5000000"
        try:
            with av.open(url, timeout=10) as c:
                for frame in c.decode(video=0):
                    received.append(frame.pts)
        except av.FFmpegError:
            pass

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    proc = subprocess.Popen(stream_cmd(cfg, f"udp://127.0.0.1:{in_port}?timeout=3000000&fifo_size=5000000",
                                       f"udp://127.0.0.1:{out_port}?pkt_size=1316", size, stats))
    time.sleep(1.0)
    with av.open(f"udp://127.0.0.1:{in_port}?pkt_size=1316", "w", format="mpegts") as c:
        s = add_h264_stream(c, 25, *frames[0].shape[:2], preset="ultrafast", tune="zerolatency")
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            time.sleep(1 / 25)
        c.mux(s.encode())
    proc.wait(60)
    receiver.join(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--video", type=Path, default=EXAMPLE)
    parser.add_argument("--rows", help="comma separated transports to run (default: all), e.g. zenoh,vre-tcp")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    frames = example_frames(args.video, args.frames, width, height)
    print(f"{len(frames)} frames at {args.size} ({describe(args.video)}), "
          f"graph rgb+hsv+edges, loopback; milliseconds. added = client round trip - compute; runtime-only = "
          f"wait + send inside the runtime")
    print(f"{'transport':<13} {'outputs':<14} {'MB out':>6} {'compute p50':>11} {'added p50':>10} {'added p99':>10} "
          f"{'wait p50':>9} {'send p50':>9} {'runtime-only p99':>17}")
    rows = [("stdin/stdout", run_stdio, ["rgb", "hsv", "edges"]), ("vre-tcp", run_tcp, ["rgb", "hsv", "edges"]),
            ("vre-tcp reply", run_tcp_reply, ["rgb", "hsv", "edges"]), ("zenoh", run_zenoh, ["rgb", "hsv", "edges"]),
            ("stdin/stdout", run_stdio, ["edges"]), ("vre-tcp", run_tcp, ["edges"]),
            ("vre-tcp reply", run_tcp_reply, ["edges"]), ("zenoh", run_zenoh, ["edges"]),
            ("udp (h264)", run_udp, ["rgb", "hsv", "edges"])]
    if args.rows:
        rows = [row for row in rows if row[0] in args.rows.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(GRAPH))
        for i, (name, fn, outputs) in enumerate(rows):
            OUTPUTS[:] = outputs
            stats_path = Path(tmp) / f"{i}.json"
            added = fn(cfg, frames, args.size, stats_path)
            stats = json.loads(stats_path.read_text())
            lat = stats["latency_ms"]
            a50, a99 = ("-", "-") if added is None else (f"{1000 * np.percentile(added, 50):.3f}",
                                                         f"{1000 * np.percentile(added, 99):.3f}")
            megabytes = width * height * (3 * ("rgb" in outputs) + 6 * ("hsv" in outputs) + ("edges" in outputs)) / 1e6
            print(f"{name:<13} {'+'.join(outputs):<14} {megabytes:>6.2f} {lat['compute']['p50']:>11.3f} {a50:>10} "
                  f"{a99:>10} {lat['wait']['p50']:>9.3f} {lat['send']['p50']:>9.3f} "
                  f"{lat['wait']['p99'] + lat['send']['p99']:>17.3f}   ({stats['processed']} frames)")


if __name__ == "__main__":
    main()
