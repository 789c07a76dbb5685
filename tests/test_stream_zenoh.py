"""Zenoh pub/sub on loopback: frames in as VRO1 records, each representation out on its own key, equal to what the
batch engine stores; malformed samples are rejected (one line, counted) while serving goes on.

Every session listens or connects on 127.0.0.1 with multicast scouting off; every wait has a deadline.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zenoh
from conftest import frames_of, free_port, wait_until

from vre_fast import RunOptions, parse_config, register_representation, run
from vre_fast.cli import main
from vre_fast.representation import ComputeBatch, Representation
from vre_fast.streaming import Limits, StreamGraph, StreamRuntime, open_sink, open_source
from vre_fast.streaming.protocol import ProtocolError, decode_frame_record, decode_record, encode_record
from vre_fast.streaming.zenoh_io import DEFAULT_LISTEN, ZenohUrl, peer_config, wait_for_subscriber

GRAPH = {"representations": {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
                             "edges": {"type": "edges_canny", "parameters": {"threshold1": 60}}}}
WAIT = 10.0
LIMITS = Limits(max_height=64, max_width=64)  # small, so that an oversized sample is cheap to make


class Peer:
    """The test's side: a zenoh peer connected to the stream's, a publisher of frames and a subscriber of results."""

    def __init__(self, port: int, frames_key: str, results_key: str):
        self.session = zenoh.open(peer_config(ZenohUrl("-", connect=(f"tcp/127.0.0.1:{port}",)), Limits()))
        self.results: queue.Queue = queue.Queue()
        self.subscriber = self.session.declare_subscriber(
            f"{results_key}/**", lambda s: self.results.put((str(s.key_expr), decode_record(s.payload.to_bytes()))))
        self.publisher = self.session.declare_publisher(frames_key, congestion_control=zenoh.CongestionControl.BLOCK)
        wait_for_subscriber(self.session, self.publisher, WAIT)

    def close(self) -> None:
        self.subscriber.undeclare()
        self.publisher.undeclare()
        self.session.close()


def start(runtime: StreamRuntime) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(stats=runtime.run()), daemon=True)
    thread.start()
    return thread, out


def test_zenoh_round_trip_equals_the_batch_engine_and_survives_malformed_samples(video: Path, tmp_path: Path,
                                                                                 caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="vre_fast")
    frames = frames_of(video)[:8]
    run(video, parse_config(GRAPH), tmp_path / "out", RunOptions(frames=(0, 8), progress=False))
    port = free_port()
    key = f"vre-test/{port}"
    graph = StreamGraph(parse_config(GRAPH), ["hsv", "edges"])
    source = open_source(f"zenoh://{key}/frames?listen=tcp/127.0.0.1:{port}", limits=LIMITS)
    runtime = StreamRuntime(graph, source, open_sink(f"zenoh://{key}/out", graph, source=source), policy="all")
    thread, out = start(runtime)
    peer = Peer(port, f"{key}/frames", f"{key}/out")
    try:
        good = encode_record(3, {"rgb": frames[3]})
        bad = {
            "bad frame header: magic b'XXXX'": b"XXXX" + good[4:],
            "frame record truncated": good[:-10],
            f"more than the {LIMITS.max_frame_record} of a 64x64 frame": bytes(LIMITS.max_frame_record + 1),
            "frame 100: array 'rgb' is float32 (8, 8, 3), expected HxWx3 uint8":
                encode_record(100, {"rgb": frames[0][:8, :8].astype(np.float32)}),
            "frame 101: array 'rgb' is uint8 (48, 64), expected HxWx3 uint8": encode_record(101, {"rgb": frames[0][..., 0]}),
            "frame 102: array 'rgb' has shape (65, 64, 3)": encode_record(102, {"rgb": np.zeros((65, 64, 3), np.uint8)}),
            "frame 103: 4 bytes after the record": encode_record(103, {"rgb": frames[0]}) + b"more",
            "frame 104: 2 arrays": encode_record(104, {"rgb": frames[0][:8], "x": frames[0][:8]}),
        }
        for i in range(4):
            peer.publisher.put(encode_record(i, {"rgb": frames[i]}))
        for payload in bad.values():
            peer.publisher.put(payload)
        for i in range(4, 8):
            peer.publisher.put(encode_record(i, {"rgb": frames[i]}))
        got = {}
        deadline = time.monotonic() + WAIT
        while len(got) < 16 and time.monotonic() < deadline:
            try:
                topic, message = peer.results.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            got[(topic, message.frame_id)] = message
    finally:
        runtime.stop()
        thread.join(WAIT)
        peer.close()
    assert not thread.is_alive()
    assert sorted(got) == sorted((f"{key}/out/{name}", i) for name in ("hsv", "edges") for i in range(8))
    for (topic, frame_id), message in got.items():
        name = topic.rsplit("/", 1)[1]
        assert list(message.arrays) == [name] and message.compute_ns > 0
        with np.load(tmp_path / "out" / name / "npz" / f"{frame_id}.npz") as stored:
            assert message.arrays[name].dtype == stored["arr_0"].dtype
            assert np.array_equal(message.arrays[name], stored["arr_0"]), (name, frame_id)
    stats = out["stats"]
    assert stats.processed == 8 and stats.rejected == len(bad) == source.rejected
    rejections = [r.getMessage() for r in caplog.records if r.getMessage().endswith("; sample skipped")]
    assert len(rejections) == len(bad) and all(r.startswith(f"zenoh {key}/frames: ") for r in rejections)
    for why in bad:
        assert sum(why in r for r in rejections) == 1, why
    assert not any(r.exc_info for r in caplog.records)


@register_representation("test_zenoh_slow_model")
class SlowModel(Representation):
    def compute(self, batch: ComputeBatch) -> np.ndarray:
        time.sleep(0.03)
        return batch.frames[..., 0].astype(np.float32)


def test_zenoh_source_with_the_latest_policy_drops_stale_frames_and_answers_the_newest():
    port = free_port()
    key = f"vre-test/{port}"
    graph = StreamGraph(parse_config({"representations": {"slow": {"type": "test_zenoh_slow_model"}}}))
    source = open_source(f"zenoh://{key}/frames?listen=tcp/127.0.0.1:{port}", limits=LIMITS)
    runtime = StreamRuntime(graph, source, open_sink(f"zenoh://{key}/out", graph, source=source), policy="latest")
    thread, out = start(runtime)
    peer = Peer(port, f"{key}/frames", f"{key}/out")
    try:
        for i in range(30):  # far faster than the model's 30 ms a frame
            peer.publisher.put(encode_record(i, {"rgb": np.full((8, 8, 3), i, np.uint8)}))
        wait_until(lambda: runtime.stats.processed + runtime.policy.dropped == 30, "every frame processed or dropped")
        last = None
        while last is None or last[1].frame_id != 29:
            last = peer.results.get(timeout=WAIT)
    finally:
        runtime.stop()
        thread.join(WAIT)
        peer.close()
    stats = out["stats"]
    assert stats.dropped > 0 and stats.processed + stats.dropped == 30 and stats.processed < 30
    assert np.array_equal(last[1].arrays["slow"], np.full((8, 8), 29, np.float32))  # the newest frame's result


def test_zenoh_peer_is_loopback_only_without_multicast_scouting():
    config = peer_config(ZenohUrl("k"), Limits())
    assert yaml.safe_load(config.get_json("mode")) == "peer"
    assert yaml.safe_load(config.get_json("listen/endpoints")) == [DEFAULT_LISTEN] == ["tcp/127.0.0.1:7447"]
    assert yaml.safe_load(config.get_json("connect/endpoints")) == []
    assert yaml.safe_load(config.get_json("scouting/multicast/enabled")) is False
    assert yaml.safe_load(config.get_json("transport/link/rx/max_message_size")) == 2 * Limits().max_frame_record
    joining = peer_config(ZenohUrl.parse("zenoh://k?connect=tcp/127.0.0.1:7447", "--source"), Limits())
    # a peer that joins listens on an ephemeral loopback port only (see the router test)
    assert yaml.safe_load(joining.get_json("listen/endpoints")) == ["tcp/127.0.0.1:0"]
    assert yaml.safe_load(joining.get_json("connect/endpoints")) == ["tcp/127.0.0.1:7447"]


def test_frame_record_checks_its_size_before_parsing():
    with pytest.raises(ProtocolError, match="a frame record of 100 bytes, more than the"):
        decode_frame_record(bytes(100), Limits(max_height=2, max_width=2, max_name=4, max_ndim=3))
    frame_id, image = decode_frame_record(encode_record(7, {"rgb": np.ones((2, 2, 3), np.uint8)}), LIMITS)
    assert frame_id == 7 and image.shape == (2, 2, 3)


@pytest.mark.parametrize(("argv", "message"), [
    (["--source", "zenoh://cam?bogus=1", "--sink", "null"], "--source zenoh://cam?bogus=1: unknown option 'bogus'"),
    (["--source", "zenoh://a//b", "--sink", "null"], "--source zenoh://a//b: 'a//b' is not a zenoh key expression"),
    (["--source", "zenoh://cam?listen=tcp/127.0.0.1:{port}", "--sink", "zenoh://out?connect=tcp/127.0.0.1:1"],
     "the zenoh source and sink share one session: give listen= and connect= on --source"),
    (["--source", "zenoh://cam?listen=tcp/127.0.0.1:{busy}", "--sink", "null"],
     "cannot open a zenoh session listening on tcp/127.0.0.1:{busy}: "),
    (["--source", "zenoh://cam?listen=garbage", "--sink", "null"],
     "--source zenoh://cam?listen=garbage: 'garbage' is not a zenoh endpoint (PROTOCOL/ADDRESS, e.g. "
     "tcp/127.0.0.1:7447)"),
    (["--source", "zenoh://cam?connect=tcp/127.0.0.1:{port},udp", "--sink", "null"], "'udp' is not a zenoh endpoint"),
    (["--source", "zenoh://cam?listen=tcp/127.0.0.1:{port}", "--sink", "reply"],
     "--sink reply: replies go back on the connection a frame came from: it needs --source vre-tcp://"),
])
def test_zenoh_url_mistakes_are_one_line_errors(tmp_path: Path, capsys, argv: list[str], message: str):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {"rgb": {"type": "rgb"}}}))
    with socket.create_server(("127.0.0.1", 0)) as busy:
        ports = {"port": free_port(), "busy": busy.getsockname()[1]}
        code = main(["stream", "-c", str(cfg), *[a.format(**ports) for a in argv], "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("vre-fast: error: ") and message.format(**ports) in err


def test_zenoh_stream_and_app_joined_through_a_router_exchange_frames():
    """rmw_zenoh's layout: a router on 127.0.0.1, the stream and the camera app both join it with ?connect=. Peers
    that only connect get no data through a zenoh 1.x router (it does not broker between peers), so a joining
    stream also listens on an ephemeral loopback port, which the app links to directly through the router's
    gossip."""
    import json

    port = free_port()
    router_config = zenoh.Config()
    for name, value in (("mode", "router"), ("listen/endpoints", [f"tcp/127.0.0.1:{port}"]),
                        ("scouting/multicast/enabled", False)):
        router_config.insert_json5(name, json.dumps(value))
    router = zenoh.open(router_config)
    key = f"vre-test/{port}"
    graph = StreamGraph(parse_config({"representations": {"rgb": {"type": "rgb"}}}))
    source = open_source(f"zenoh://{key}/frames?connect=tcp/127.0.0.1:{port}", limits=LIMITS)
    runtime = StreamRuntime(graph, source, open_sink(f"zenoh://{key}/out", graph, source=source), policy="all")
    thread, _ = start(runtime)
    try:
        peer = Peer(port, f"{key}/frames", f"{key}/out")
        try:
            frame = np.full((8, 8, 3), 7, np.uint8)
            peer.publisher.put(encode_record(0, {"rgb": frame}))
            topic, message = peer.results.get(timeout=WAIT)
            assert topic == f"{key}/out/rgb" and np.array_equal(message.arrays["rgb"], frame)
        finally:
            peer.close()
    finally:
        runtime.stop()
        thread.join(WAIT)
        router.close()


def test_wait_for_subscriber_accepts_a_link_to_a_router():
    """A zenoh client (linked to a router, never to peers) publishing to a stream behind that router."""
    import json

    def config(mode: str, **endpoints: list[str]) -> zenoh.Config:
        c = zenoh.Config()
        for name, value in (("mode", mode), ("scouting/multicast/enabled", False),
                            *((f"{k}/endpoints", v) for k, v in endpoints.items())):
            c.insert_json5(name, json.dumps(value))
        return c

    port = free_port()
    router = zenoh.open(config("router", listen=[f"tcp/127.0.0.1:{port}"]))
    stream_side = zenoh.open(peer_config(ZenohUrl("k", connect=(f"tcp/127.0.0.1:{port}",)), Limits()))
    client = zenoh.open(config("client", connect=[f"tcp/127.0.0.1:{port}"]))
    try:
        got: queue.Queue = queue.Queue()
        subscriber = stream_side.declare_subscriber("vre-test/cam", lambda s: got.put(s.payload.to_bytes()))
        publisher = client.declare_publisher("vre-test/cam")
        wait_for_subscriber(client, publisher, WAIT)
        publisher.put(b"frame")
        assert got.get(timeout=WAIT) == b"frame"
        subscriber.undeclare()
        publisher.undeclare()
    finally:
        for session in (client, stream_side, router):
            session.close()


def test_wait_for_subscriber_waits_for_a_subscriber_not_only_a_link():
    port = free_port()
    listening = zenoh.open(peer_config(ZenohUrl("k", listen=(f"tcp/127.0.0.1:{port}",)), Limits()))
    joining = zenoh.open(peer_config(ZenohUrl("k", connect=(f"tcp/127.0.0.1:{port}",)), Limits()))
    try:
        publisher = joining.declare_publisher("vre-test/nobody")
        wait_until(lambda: bool(joining.info.peers_zid()), "the link")
        with pytest.raises(TimeoutError, match="no subscriber of vre-test/nobody within 0.3 s"):
            wait_for_subscriber(joining, publisher, 0.3)  # linked, but nobody subscribes
        subscriber = listening.declare_subscriber("vre-test/nobody", lambda s: None)
        wait_for_subscriber(joining, publisher, WAIT)
        subscriber.undeclare()
        publisher.undeclare()
    finally:
        joining.close()
        listening.close()
