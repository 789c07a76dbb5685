"""A robot's camera node and its consumer, over Zenoh on loopback (offline; needs `pip install 'vre-fast[zenoh]'`).

    python examples/zenoh_example.py [--video examples/bikes.mp4] [--frames 40] [--fps 15] [--port 7447]

Starts `vre-fast stream --source zenoh://example/camera --sink zenoh://example/vre` (a zenoh peer listening on
tcp/127.0.0.1:PORT only, multicast scouting off), then, in this process, a peer that connects to it and
  - publishes the video's frames on example/camera at --fps, each a VRO1 record of one HxWx3 uint8 array
    (a synthetic clip when --video is absent);
  - subscribes to example/vre/** and prints every representation that comes back (its key, frame, dtype,
    shape, the stream's compute time and the round trip).
The stream uses the latest-frame policy: frames that arrive while it is busy are dropped, not queued. On the
way out the stream is stopped with SIGINT and prints its latency summary.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import yaml
import zenoh

from vre_fast.sources.synthetic import drifting_texture
from vre_fast.streaming import Limits
from vre_fast.streaming.protocol import decode_record, encode_record
from vre_fast.streaming.zenoh_io import ZenohUrl, peer_config, wait_for_subscriber

GRAPH = {"representations": {"hsv": {"type": "hsv"}, "edges": {"type": "edges_canny"}}}


def video_frames(video: Path | None, count: int) -> list[np.ndarray]:
    """Up to `count` frames of the video at 480 wide, or of a synthetic clip."""
    if video is None or not video.exists():
        print(f"{video or 'no video'}: using a synthetic clip (examples/get_example_video.py fetches bikes.mp4)")
        return list(drifting_texture(count, 270, 480))
    frames = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            height = 480 * frame.height // frame.width // 2 * 2  # even, for encoders downstream
            frames.append(frame.to_ndarray(format="rgb24", width=480, height=height))
            if len(frames) == count:
                break
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=Path(__file__).parent / "bikes.mp4")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=7447)
    args = parser.parse_args()
    frames = video_frames(args.video, args.frames)
    h, w = frames[0].shape[:2]
    endpoint = f"tcp/127.0.0.1:{args.port}"

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "graph.yaml"
        cfg.write_text(yaml.safe_dump(GRAPH))
        stream = subprocess.Popen([sys.executable, "-m", "vre_fast", "stream", "-c", str(cfg), "--size", f"{w}x{h}",
                                   "--source", f"zenoh://example/camera?listen={endpoint}",
                                   "--sink", "zenoh://example/vre"])
        session = zenoh.open(peer_config(ZenohUrl("example", connect=(endpoint,)), Limits()))
        sent: dict[int, float] = {}
        lock = threading.Lock()

        def on_result(sample: zenoh.Sample) -> None:
            message = decode_record(sample.payload.to_bytes())
            (name, array), = message.arrays.items()
            with lock:
                round_trip = time.perf_counter() - sent[message.frame_id]
            print(f"{sample.key_expr}: frame {message.frame_id:3d} {name:<6} {array.dtype} {array.shape}  compute "
                  f"{message.compute_ns / 1e6:6.2f} ms  round trip {1000 * round_trip:6.2f} ms")

        subscriber = session.declare_subscriber("example/vre/**", on_result)
        publisher = session.declare_publisher("example/camera", congestion_control=zenoh.CongestionControl.BLOCK,
                                              express=True)
        try:
            wait_for_subscriber(session, publisher, timeout=60)  # the stream warms its graph up first
            time.sleep(0.2)  # and its publishers learn of our subscriber
            for i, frame in enumerate(frames):
                with lock:
                    sent[i] = time.perf_counter()
                publisher.put(encode_record(i, {"rgb": frame}))
                time.sleep(1 / args.fps)
            time.sleep(0.5)  # the last results
        finally:
            stream.send_signal(signal.SIGINT)
            stream.wait(30)
            subscriber.undeclare()
            publisher.undeclare()
            session.close()


if __name__ == "__main__":
    main()
