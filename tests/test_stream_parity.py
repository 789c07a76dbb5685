"""Streaming parity with VRE's vre_streaming: results back on the same TCP connection (`--sink reply`, framed or
raw RGB as VRE's socket mode), `--output-size` and `--hud` on the picture sinks. Loopback only, waits bounded."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from conftest import frames_of

from vre_fast import RunOptions, parse_config, run
from vre_fast.cli import main
from vre_fast.streaming import StreamGraph, StreamRuntime, encode_frame, open_sink, open_source, read_result
from vre_fast.streaming.sinks import Pictures, hud_box
from vre_fast.streaming.sources import SourceFrame

GRAPH = {"representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
                             "edges": {"type": "edges_canny", "parameters": {"threshold1": 60}}}}
WAIT = 10.0


def connect_when_listening(port: int) -> socket.socket:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def recv_exact(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"the server closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def test_reply_mode_request_reply_on_one_connection_equals_the_batch_engine(video: Path, tmp_path: Path):
    """A control loop's pattern: send a frame, wait for its result on the same socket, send the next."""
    frames = frames_of(video)[:6]
    run(video, parse_config(GRAPH), tmp_path / "out", RunOptions(frames=(0, 6), progress=False))
    graph = StreamGraph(parse_config(GRAPH), ["hsv", "edges"])
    source = open_source("vre-tcp://127.0.0.1:0", sessions=1)
    runtime = StreamRuntime(graph, source, open_sink("reply", graph, source=source))  # the latest policy
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(stats=runtime.run()), daemon=True)
    runner.start()
    replies = []
    with socket.create_connection(("127.0.0.1", source.address[1]), timeout=WAIT) as conn, \
            conn.makefile("rb") as stream:
        for i, frame in enumerate(frames):
            conn.sendall(encode_frame(frame, 10 + i))
            replies.append(read_result(stream))
    runner.join(WAIT)
    assert not runner.is_alive() and out["stats"].processed == 6 and out["stats"].dropped == 0
    assert [r.frame_id for r in replies] == [10 + i for i in range(6)]
    for i, reply in enumerate(replies):
        assert list(reply.arrays) == ["hsv", "edges"]
        for name, array in reply.arrays.items():
            with np.load(tmp_path / "out" / name / "npz" / f"{i}.npz") as stored:
                assert array.dtype == stored["arr_0"].dtype and np.array_equal(array, stored["arr_0"]), (name, i)


def test_vre_socket_mode_raw_frames_in_raw_pictures_back_at_output_size(video: Path, tmp_path: Path):
    """VRE's `tcp://HOST:PORT --output_destination socket`: raw RGB24 frames of --size in, each picture (at
    --output-size) back on the same connection. The client sends every frame, closes its sending side, and still
    gets every picture."""
    frames = frames_of(video)[:5]
    h, w = frames[0].shape[:2]
    out_w, out_h = 96, 32
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(GRAPH))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pictures: list[np.ndarray] = []

    def client() -> None:
        with connect_when_listening(port) as conn:
            for frame in frames:
                conn.sendall(frame.tobytes())
            conn.shutdown(socket.SHUT_WR)
            for _ in frames:
                pictures.append(np.frombuffer(recv_exact(conn, out_h * out_w * 3), np.uint8).reshape(out_h, out_w, 3))
            assert conn.recv(1) == b""  # and then the server closes

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    code = main(["stream", "-c", str(cfg), "--source", f"vre-tcp://127.0.0.1:{port}?format=raw", "--size", f"{w}x{h}",
                 "--sink", "reply?format=raw", "--representations", "rgb,edges", "--output-size", f"{out_w}x{out_h}",
                 "--policy", "all", "--sessions", "1", "--quiet"])
    thread.join(WAIT)
    assert code == 0 and not thread.is_alive() and len(pictures) == 5
    with StreamGraph.from_config(cfg, ["rgb", "edges"]) as graph:  # the file's order (yaml sorts the keys)
        draw = Pictures(graph, output_size=(out_h, out_w))
        for frame, picture in zip(frames, pictures):
            assert np.array_equal(picture, draw(graph.push(frame)))


def test_raw_tcp_source_needs_a_size(capsys, tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(GRAPH))
    assert main(["stream", "-c", str(cfg), "--source", "vre-tcp://127.0.0.1:0?format=raw", "--sink", "null"]) == 1
    assert capsys.readouterr().err == ("vre-fast: error: --source vre-tcp://127.0.0.1:0?format=raw: raw frames carry "
                                       "no header: give --size WxH\n")


def test_output_size_sets_the_encoded_video_size(video: Path, tmp_path: Path):
    graph = StreamGraph(parse_config(GRAPH), ["rgb", "hsv"])
    target = tmp_path / "out.mp4"
    sink = open_sink(str(target), graph, fps=10, output_size=(40, 120))
    StreamRuntime(graph, open_source(str(video)), sink, policy="all").run()
    with av.open(str(target)) as c:
        shapes = {f.to_ndarray(format="rgb24").shape for f in c.decode(video=0)}
    assert shapes == {(40, 120, 3)}  # the side-by-side picture alone would be 48x128
    assert graph.render(graph.push(frames_of(video)[0])).shape == (48, 128, 3)


@pytest.mark.parametrize("output_size", [None, (270, 480)])
def test_hud_draws_only_inside_its_box(video: Path, output_size: tuple[int, int] | None):
    frame = frames_of(video)[3]
    with StreamGraph(parse_config(GRAPH), ["rgb", "edges"]) as graph:
        result = graph.push(frame, 3)
        result.origin = SourceFrame(3, frame, time.perf_counter() - 0.25)
        plain = Pictures(graph, output_size)(result)
        drawn = Pictures(graph, output_size, hud=True)(result)
    assert drawn.shape == plain.shape == ((48, 128, 3) if output_size is None else (*output_size, 3))
    box_h, box_w = hud_box(*drawn.shape[:2])
    assert 8 <= box_h < drawn.shape[0] and box_w > 40
    outside = np.ones(drawn.shape[:2], bool)
    outside[:box_h, :box_w] = False
    assert np.array_equal(drawn[outside], plain[outside])  # nothing drawn outside the box
    box = drawn[:box_h, :box_w].astype(int)
    assert (box[..., 0] == box[..., 1]).all() and (box[..., 1] == box[..., 2]).all()  # white text on black
    assert (box == 0).mean() > 0.5 and (box > 200).any()  # mostly black, with text in it
    assert not np.array_equal(box, plain[:box_h, :box_w])


def test_hud_line_tells_fps_latency_and_frame(video: Path):
    frame = frames_of(video)[0]
    with StreamGraph(parse_config(GRAPH), ["rgb"]) as graph:
        pictures = Pictures(graph, hud=True)
        result = graph.push(frame, 41)
        start = time.perf_counter()
        result.origin = SourceFrame(41, frame, start - 0.25)
        assert pictures.hud_line(result, start) == "0.0 fps  250.0 ms  #41"  # one picture: no rate yet
        pictures.hud_line(result, start + 0.1)
        assert pictures.hud_line(result, start + 0.2).startswith("10.0 fps  450.0 ms  #41")


def test_picture_resize_matches_opencv_reference(video: Path):
    """--output-size is one cv2.resize of the side-by-side picture: INTER_AREA when shrinking, else linear."""
    frame = frames_of(video)[0]
    with StreamGraph(parse_config(GRAPH), ["rgb", "hsv"]) as graph:
        result = graph.push(frame)
        full = graph.render(result)
        for size, interpolation in (((24, 64), cv2.INTER_AREA), ((96, 256), cv2.INTER_LINEAR)):
            expected = cv2.resize(full, size[::-1], interpolation=interpolation)
            assert np.array_equal(Pictures(graph, size)(result), expected)


@pytest.mark.parametrize("sink", ["stdout:vre", "reply", "null"])
def test_output_size_and_hud_on_a_sink_without_pictures_is_an_error(tmp_path: Path, capsys, sink: str):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(GRAPH))
    code = main(["stream", "-c", str(cfg), "--source", "vre-tcp://127.0.0.1:0", "--sink", sink, "--hud", "--quiet"])
    assert code == 1
    assert capsys.readouterr().err == (f"vre-fast: error: --output-size and --hud draw on pictures; --sink {sink} sends "
                                       "none (the picture sinks: stdout, ?format=raw, reply?format=raw, FFmpeg URLs, "
                                       "video files, window)\n")


def test_a_client_that_does_not_take_its_reply_is_dropped_and_the_others_are_served(caplog):
    """Client A sends big frames and never reads: its first reply times out (--read-timeout), A is dropped with one
    line, its other replies are skipped, and client B, request -> reply, is served."""
    caplog.set_level("INFO", logger="vre_fast")
    graph = StreamGraph(parse_config({"representations": {"rgb": {"type": "rgb"}}}))
    source = open_source("vre-tcp://127.0.0.1:0", read_timeout=0.5, sessions=2)
    runtime = StreamRuntime(graph, source, open_sink("reply", graph, source=source), policy="all")
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(stats=runtime.run()), daemon=True)
    runner.start()
    big = np.zeros((1080, 1920, 3), np.uint8)  # a 6.2 MB reply: more than the socket buffers hold
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.settimeout(WAIT)
    a.connect(("127.0.0.1", source.address[1]))
    a_name = "{}:{}".format(*a.getsockname())
    for i in range(3):
        a.sendall(encode_frame(big, i))
    deadline = time.monotonic() + WAIT
    while not any("reply not sent" in m for m in caplog.messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    small = np.full((4, 6, 3), 9, np.uint8)
    with socket.create_connection(("127.0.0.1", source.address[1]), timeout=WAIT) as b, b.makefile("rb") as stream:
        b.sendall(encode_frame(small, 77))
        reply = read_result(stream)
    a.close()
    runner.join(WAIT)
    assert not runner.is_alive() and out["stats"].processed == 4
    assert reply.frame_id == 77 and np.array_equal(reply.arrays["rgb"], small)
    dropped = [m for m in caplog.messages if "reply not sent" in m]
    assert len(dropped) == 1 and dropped[0].startswith(f"client {a_name}: reply not sent (TimeoutError")
