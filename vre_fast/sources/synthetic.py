"""Small synthetic videos and ROS bags for tests, benchmarks and offline examples (nothing to download)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import numpy as np

from ..h264 import add_h264_stream

__all__ = ["drifting_texture", "write_image_bag", "write_video"]


def drifting_texture(num_frames: int, height: int, width: int, step: int = 2, seed: int = 0) -> Iterable[np.ndarray]:
    """Random 4x4-pixel blocks sliding `step` px to the left per frame: real motion and edges."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height // 4 + 1, (width + step * num_frames) // 4 + 1, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((4, 4, 1), np.uint8))
    for i in range(num_frames):
        yield np.ascontiguousarray(texture[:height, step * i: step * i + width])


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, gop: int = 12) -> Path:
    """Encodes RGB frames with H.264 (MPEG-4 part 2 where libx264 is missing), no B-frames; odd sides lose their
    last row or column."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = add_h264_stream(container, fps, *first.shape[:2], bf="0")
        stream.gop_size = gop
        for frame in (first, *frames):
            picture = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path


_FROM_RGB = {"rgb8": lambda f: f, "bgr8": lambda f: f[..., ::-1], "mono8": lambda f: f[..., 0],
             "rgba8": lambda f: np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]),
             "bgra8": lambda f: np.dstack([f[..., ::-1], np.full(f.shape[:2], 255, np.uint8)])}


def write_image_bag(path: str | Path, topics: dict[str, Sequence[np.ndarray]], storage: str = "mcap",
                    encoding: str = "rgb8", start_ns: int = 1_700_000_000 * 10**9, period_ns: int = 100_000_000,
                    log_times: Sequence[int] | None = None, row_padding: int = 0) -> Path:
    """Writes RGB frames as image messages with the pure-Python `rosbags` writer: `storage` "mcap" or "sqlite3"
    (a rosbag2 directory) or "ros1" (a .bag file). `encoding` is a sensor_msgs/Image encoding (frames converted
    from RGB for rgb8, bgr8, rgba8, bgra8, mono8; for any other, each frame's own bytes are its data) or "jpeg" /
    "png" for CompressedImage. Message i of a topic is logged at `log_times[i]` (default start + i * period) and
    stamped (header) 1 ms earlier; `row_padding` bytes end each raw row (a `step` wider than the pixels)."""
    import cv2
    from rosbags.rosbag1 import Writer as Writer1
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    compressed = encoding in ("jpeg", "png")
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    if storage == "ros1":
        if Path(path).suffix != ".bag":
            raise ValueError(f"{path}: a ROS 1 bag's name ends in .bag (that is how readers tell it)")
        writer, serialize = Writer1(path), store.serialize_ros1
    else:
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        writer, serialize = Writer(path, version=9, storage_plugin=plugin), store.serialize_cdr

    def message(frame: np.ndarray, stamp_ns: int) -> object:
        stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        header = types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera")
        if compressed:
            ok, data = cv2.imencode(f".{encoding.replace('jpeg', 'jpg')}", np.ascontiguousarray(frame[..., ::-1]))
            assert ok
            return types[msgtype](header=header, format=encoding, data=data.reshape(-1))
        pixels = np.ascontiguousarray(_FROM_RGB.get(encoding, lambda f: f)(frame))
        rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
        rows = np.hstack([rows, np.zeros((rows.shape[0], row_padding), np.uint8)])
        return types[msgtype](header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                              is_bigendian=0, step=rows.shape[1], data=rows.reshape(-1))

    with writer:
        for topic, frames in topics.items():
            connection = writer.add_connection(topic, msgtype, typestore=store)
            for i, frame in enumerate(frames):
                log_ns = log_times[i] if log_times is not None else start_ns + i * period_ns
                writer.write(connection, log_ns, serialize(message(frame, log_ns - 1_000_000), msgtype))
    return Path(path)
