"""Frame-exact access to the images of one topic of a ROS bag, with the VideoSource interface.

ROS 1 bags (`.bag`), rosbag2 directories (a folder with `metadata.yaml`, sqlite3 or MCAP storage) and bare
rosbag2 storage files (`.mcap`, `.db3`) are read by the pure-Python `rosbags` library (the `ros` extra):
no ROS installation is needed. Frame k is the k-th message of the topic in log-time order (the order the
bag is read in; messages logged at the same nanosecond keep the reader's order), whatever the message
rate, gaps or drops: a bag has no frame rate to turn times into indices, so indices are counted.

Reading is sequential, like decoding a video: every message passed is indexed by its log time as it goes,
so seeking back to a message already passed is a query at its log time (the bag's own index: MCAP chunk
indexes, the sqlite timestamp index, ROS 1 index records) and an exact count among messages logged at the
same nanosecond. Nothing is scanned ahead at open: a run over the whole topic reads it once.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import VideoError

__all__ = ["ENCODINGS", "IMAGE_TYPES", "RosbagSource"]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED)
# sensor_msgs/Image encodings read: bytes per pixel, and OpenCV's conversion to RGB (None: the bytes are RGB). A
# strided NumPy view (f[..., ::-1]) would cost its copy into the frame ring 6x what cv2.cvtColor does at 960x540
ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None), "bgr8": (3, cv2.COLOR_BGR2RGB), "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB), "mono8": (1, cv2.COLOR_GRAY2RGB), "8UC1": (1, cv2.COLOR_GRAY2RGB),
}
SEEK_GAP = 32  # read forward through gaps shorter than this instead of seeking


class RosbagSource:
    """The images of `topic` (the bag's only image topic when None) as RGB frames, with the interface of
    VideoSource (sources.FramesSource), and each decoded frame's times."""

    def __init__(self, path: str | Path, topic: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"ROS bag not found: {self.path}")
        if self.path.name.endswith(".bag.active"):
            raise VideoError(f"{self.path}: a ROS 1 bag still being recorded (or its recorder was killed): it has no "
                             f"index yet; read it once `rosbag record` has stopped, or index it with `rosbag reindex` "
                             f"and rename it to .bag")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            storage = sorted(p for p in self.path.iterdir() if p.suffix in (".mcap", ".db3"))
            raise VideoError(f"{self.path}: a rosbag2 directory without its metadata.yaml (still recording, or the "
                             f"recorder was stopped before writing it); read a storage file as it is "
                             f"({', '.join(map(str, storage))}) or rebuild the metadata with `ros2 bag reindex`")
        try:
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import Stores, get_typestore
        except ImportError:
            raise VideoError(f"{self.path}: reading ROS bags needs the `rosbags` package: "
                             f"pip install 'vre-fast[ros]'") from None
        try:  # bags without embedded definitions (rosbag2 sqlite3 before Iron) decode with the standard types
            self._reader = AnyReader([self.path], default_typestore=get_typestore(Stores.LATEST))
            self._reader.open()
            self._open = True
        except Exception as exc:  # the library's own errors, and whatever a damaged file makes its parsers raise
            raise VideoError(f"cannot open ROS bag {self.path}: {_describe(exc)}") from None
        try:
            self.topic, self.message_type, self.num_frames = self._choose(topic)
            self._connections = [c for c in self._reader.connections if c.topic == self.topic]
            self._log_times: list[int] = []  # log time (ns) of every message passed so far, by index
            self._messages: Iterator[tuple[Any, int, bytes]] | None = None
            self._position = -1  # index of the last message `_messages` returned
            self._times: dict[int, tuple[int, int]] = {}  # index -> (log time, header stamp) in ns, as decoded
            first = self._frame(0)
            self.height, self.width = first.shape[:2]
            span = self._reader.duration  # ns
            # nominal: a bag has no frame rate; messages over the bag's span (`--pace` replays the times themselves)
            rate = Fraction((self.num_frames - 1) * 10**9, span) if self.num_frames > 1 and span else Fraction(0)
            self.fps = rate.limit_denominator(1001)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._open:
            self._open = False
            self._reader.close()

    def __enter__(self) -> RosbagSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reopen(self) -> RosbagSource:
        """A second, independent reader of the same topic (the decode thread owns this one)."""
        return RosbagSource(self.path, self.topic)

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (index, frame) for each index in ascending order."""
        for target in sorted(set(indices)):
            if not 0 <= target < self.num_frames:
                raise VideoError(f"{self.path}: frame {target} is out of range (topic {self.topic} has "
                                 f"{self.num_frames} messages)")
            yield target, self._frame(target)

    def head(self, count: int) -> np.ndarray:
        """The first `count` frames (all of them if the topic has fewer), stacked."""
        return np.stack([frame for _, frame in self.read(range(min(count, self.num_frames)))])

    def frames(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(index, log time in ns, frame) of every message in order, for streaming."""
        for index in range(self.num_frames):
            frame = self._frame(index)
            yield index, self._times[index][0], frame

    def frame_times(self) -> dict[int, tuple[int, int]]:
        """(log time, header stamp) in ns of each message decoded so far, by index."""
        return dict(self._times)

    def fingerprint(self) -> str:
        """sha256 of the resolution, the message count, and the log time, header stamp and decoded pixels of
        the first three messages: the log times (nanoseconds of the recording's clock) tell two recordings
        apart even when their first pictures are alike, and a copy of the bag (moved, converted to another
        storage, other topics dropped) is the same source. Reads only the first messages."""
        digest = hashlib.sha256(f"{self.width}x{self.height}:{self.num_frames}".encode())
        for index, frame in self.read(range(min(3, self.num_frames))):
            log_time, stamp = self._times[index]
            digest.update(np.array([index, log_time, stamp], np.int64).tobytes())
            digest.update(np.ascontiguousarray(frame).tobytes())
        return digest.hexdigest()

    @property
    def size_bytes(self) -> int:
        """The bag's size on disk (all files of a rosbag2 directory)."""
        if self.path.is_dir():
            return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return self.path.stat().st_size

    def _choose(self, topic: str | None) -> tuple[str, str, int]:
        topics = self._reader.topics
        images = {name: info for name, info in topics.items() if info.msgtype in IMAGE_TYPES}
        found = ", ".join(f"{name} ({info.msgtype})" for name, info in sorted(topics.items())) or "none"
        if topic is None:
            if len(images) != 1:
                raise VideoError(f"{self.path}: " + (f"{len(images)} image topics ({', '.join(sorted(images))}): "
                                                     f"choose one with --topic" if images else
                                 f"no image topic ({' or '.join(IMAGE_TYPES)}); its topics: {found}"))
            topic = next(iter(images))
        if topic not in topics:
            raise VideoError(f"{self.path}: no topic {topic}; its topics: {found}")
        info = topics[topic]
        if topic not in images:
            raise VideoError(f"{self.path}: topic {topic} holds {info.msgtype}, not images "
                             f"({' or '.join(IMAGE_TYPES)})")
        if not info.msgcount:
            raise VideoError(f"{self.path}: topic {topic} has no messages")
        return topic, info.msgtype, info.msgcount

    def _frame(self, target: int) -> np.ndarray:
        """Moves the reader to message `target` and decodes it."""
        frontier = len(self._log_times) - 1  # the last message indexed
        ahead = self._messages is not None and target > self._position
        if not (ahead and (target - self._position <= SEEK_GAP or self._position == frontier)):
            self._seek(max(min(target, frontier), 0))
        while self._position < target - 1:
            self._next_message(target)
        return self._decode(target, *self._next_message(target))

    def _seek(self, index: int) -> None:
        """Positions the reader at or before message `index` (one already indexed, or the first)."""
        start = self._log_times[index] if self._log_times else None
        try:
            self._messages = self._reader.messages(self._connections, start=start)
        except Exception as exc:
            raise VideoError(f"{self.path}: topic {self.topic}: cannot seek to message {index}: {_describe(exc)}"
                             ) from None
        # the first message logged at that time comes next: `_frame` reads on through any logged at the same
        # nanosecond before `index`
        self._position = -1 if start is None else bisect_left(self._log_times, start) - 1

    def _next_message(self, target: int) -> tuple[int, bytes]:
        assert self._messages is not None
        try:
            _, log_time, raw = next(self._messages)
        except StopIteration:
            self._messages = None
            raise VideoError(f"{self.path}: topic {self.topic} ends after message {self._position} but message "
                             f"{target} was asked for (the bag's index says {self.num_frames}; truncated bag?)"
                             ) from None
        except Exception as exc:  # a damaged chunk, page or record
            self._messages = None
            raise VideoError(f"{self.path}: topic {self.topic}: reading failed after message {self._position} "
                             f"(while looking for message {target}): {_describe(exc)}") from None
        self._position += 1
        if self._position == len(self._log_times):
            self._log_times.append(log_time)
        elif self._log_times[self._position] != log_time:  # the read order must not depend on where it started
            raise VideoError(f"{self.path}: topic {self.topic}: message {self._position} was logged at "
                             f"{self._log_times[self._position]} ns when read before, at {log_time} ns now")
        return log_time, raw

    def _decode(self, index: int, log_time: int, raw: bytes) -> np.ndarray:
        where = f"{self.path}: topic {self.topic}, message {index}"
        try:
            msg = self._reader.deserialize(raw, self.message_type)
        except Exception as exc:
            raise VideoError(f"{where}: cannot deserialize {self.message_type}: {_describe(exc)}") from None
        frame = _compressed_to_rgb(msg, where) if self.message_type == COMPRESSED else _image_to_rgb(msg, where)
        if index and frame.shape[:2] != (self.height, self.width):
            raise VideoError(f"{where} is {frame.shape[1]}x{frame.shape[0]}, the topic's first is "
                             f"{self.width}x{self.height} (every frame must have the same size)")
        stamp = msg.header.stamp
        self._times[index] = (log_time, stamp.sec * 10**9 + stamp.nanosec)
        return frame


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if not type(exc).__name__.endswith("ReaderError") else str(exc)


def _image_to_rgb(msg: Any, where: str) -> np.ndarray:
    """A sensor_msgs/Image of an 8-bit encoding as HxWx3 RGB (rgb8: a read-only view of the message); rows
    may be padded (`step` > width x bytes per pixel). Byte order (`is_bigendian`) does not apply to 8-bit
    channels; wider encodings (16UC1 depth, mono16, bayer patterns, YUV) are refused."""
    if msg.encoding not in ENCODINGS:
        raise VideoError(f"{where}: encoding '{msg.encoding}' is not supported (supported: "
                         f"{', '.join(ENCODINGS)}; CompressedImage: jpeg, png)")
    channels, conversion = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if not height or not width:
        raise VideoError(f"{where}: an empty {msg.encoding} image ({width}x{height}, {data.size} bytes of data)")
    if step < width * channels or data.size < step * (height - 1) + width * channels:
        raise VideoError(f"{where}: a {width}x{height} {msg.encoding} image needs rows of at least "
                         f"{width * channels} bytes; it has step {step} and {data.size} bytes of data")
    if data.size < step * height:  # the last row without its padding
        data = np.concatenate([data, np.zeros(step * height - data.size, np.uint8)])
    pixels = data[:step * height].reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def _compressed_to_rgb(msg: Any, where: str) -> np.ndarray:
    """A sensor_msgs/CompressedImage in JPEG or PNG as HxWx3 RGB. image_transport compresses colour images as
    BGR ("rgb8; jpeg compressed bgr8"), which is what OpenCV decodes to, so BGR -> RGB is right for either;
    a 16-bit PNG (depth, "16UC1; png compressed") or compressedDepth is refused, not scaled down."""
    data = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if not data.size:
        raise VideoError(f"{where}: an empty CompressedImage (format '{msg.format}', 0 bytes of data)")
    head = data[:8].tobytes()
    if not (head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n")):
        raise VideoError(f"{where}: CompressedImage format '{msg.format}' is not supported (supported: jpeg, png; "
                         f"Image encodings: {', '.join(ENCODINGS)})")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VideoError(f"{where}: the {msg.format} data does not decode (corrupt image)")
    if image.dtype != np.uint8:
        raise VideoError(f"{where}: CompressedImage format '{msg.format}' holds {image.dtype} pixels; only 8-bit "
                         f"images are supported")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
