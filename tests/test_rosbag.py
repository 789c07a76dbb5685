"""ROS bags as inputs: rosbag2 (MCAP, sqlite3) and ROS 1 bags written here with the `rosbags` writer, run through
`vre-fast run` and `vre-fast stream`, against the same pixels from a lossless video and computed references."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from conftest import make_video

pytest.importorskip("rosbags", reason="the `ros` extra (rosbags) is not installed")

from PIL import Image  # noqa: E402

from vre_fast.cli import main  # noqa: E402
from vre_fast.errors import VideoError, VreError  # noqa: E402
from vre_fast.kernels.hsv import hsv_numpy  # noqa: E402
from vre_fast.sources import VideoSource, open_input  # noqa: E402
from vre_fast.sources.synthetic import drifting_texture, write_image_bag  # noqa: E402
from vre_fast.streaming import open_source  # noqa: E402

TOPIC = "/camera/image_raw"
NAMES = ("rgb", "hsv", "edges")
CONFIG = {"batch_size": 3, "representations": {
    "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
    "edges": {"type": "edges_canny", "parameters": {"threshold1": 60, "threshold2": 150}}}}
START, PERIOD = 1_700_000_000 * 10**9, 40_000_000


def frames_of(n: int = 7) -> list[np.ndarray]:
    return list(drifting_texture(n, 48, 64, seed=3))


def write_lossless_video(path: Path, frames: list[np.ndarray]) -> Path:
    """PNG frames in a MOV: decodes to exactly these pixels, with an exact frame count in the header."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def npz(out: Path, name: str, frame: int) -> np.ndarray:
    with np.load(out / name / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "cfg.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def video_out(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Path:
    """The engine's outputs for a lossless video of frames_of(): what every raw-image bag must give."""
    root = tmp_path_factory.mktemp("video")
    video = write_lossless_video(root / "frames.mov", frames_of())
    with VideoSource(video) as source:  # the video really is lossless
        assert all(np.array_equal(f, g) for (_, f), g in zip(source.read(range(7)), frames_of()))
    assert cli("run", video, "-c", config, "-o", root / "out", "--no-progress") == 0
    return root / "out"


@pytest.mark.parametrize("storage,encoding,padding", [("mcap", "rgb8", 0), ("sqlite3", "bgr8", 0),
                                                      ("ros1", "rgb8", 5)])
def test_raw_images_give_the_outputs_of_the_same_frames_from_a_video(tmp_path: Path, config: Path, video_out: Path,
                                                                     storage: str, encoding: str, padding: int):
    frames = frames_of()
    bag = write_image_bag(tmp_path / ("bag.bag" if storage == "ros1" else "bag"), {TOPIC: frames}, storage=storage,
                          encoding=encoding, start_ns=START, period_ns=PERIOD, row_padding=padding)
    out = tmp_path / "out"
    assert cli("run", bag, "--topic", TOPIC, "-c", config, "-o", out, "--no-progress") == 0
    for i, frame in enumerate(frames):
        assert np.array_equal(npz(out, "rgb", i), frame), i  # the pixels put in, whatever the encoding
        np.testing.assert_allclose(npz(out, "hsv", i).astype(np.float32), hsv_numpy(frame), atol=1e-3)
        assert np.array_equal(npz(out, "edges", i), cv2.Canny(frame, 60, 150) // 255)
        for name in NAMES:  # and bit for bit what the same frames from a video give
            assert np.array_equal(npz(out, name, i), npz(video_out, name, i)), (name, i)
    (source,) = json.loads((out / ".source.json").read_text())["sources"]
    assert source["path"] == str(bag.resolve()) and source["topic"] == TOPIC and source["num_frames"] == 7
    assert (source["width"], source["height"]) == (64, 48) and len(source["fingerprint"]) == 64
    assert source["size_bytes"] == sum(f.stat().st_size for f in [bag, *bag.rglob("*")] if f.is_file())


def test_the_writer_writes_what_the_encodings_say(tmp_path: Path):
    """The bag's raw bytes, read with rosbags alone: the reader is checked against these, not against itself."""
    from rosbags.highlevel import AnyReader

    frames = frames_of(2)
    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames}, storage="mcap", encoding="bgr8", row_padding=3)
    with AnyReader([bag]) as reader:
        for (connection, _, raw), frame in zip(reader.messages(), frames):
            msg = reader.deserialize(raw, connection.msgtype)
            assert (msg.encoding, msg.step, msg.width, msg.height) == ("bgr8", 64 * 3 + 3, 64, 48)
            rows = msg.data.reshape(48, 64 * 3 + 3)
            assert np.array_equal(rows[:, :192].reshape(48, 64, 3), frame[..., ::-1]) and not rows[:, 192:].any()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "ros1"])
def test_seeking_is_exact_by_message_index_also_among_equal_log_times(tmp_path: Path, storage: str):
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(40)]
    times = [START + 10 * (i // 3) for i in range(40)]  # three messages per log time
    bag = write_image_bag(tmp_path / ("b.bag" if storage == "ros1" else "b"), {TOPIC: frames}, storage=storage,
                          log_times=times)
    with open_input(bag) as source:
        assert source.num_frames == 40 and source.topic == TOPIC
        order = [39, 5, 4, 37, 38, 0, 36, 2, 1, 20, 19, 21, 3, 3]  # back, forth, across the seek gap, repeated
        for index in order:
            (got,) = source.read([index])
            assert got[0] == index and got[1][0, 0, 0] == index, (index, got[1][0, 0, 0])
            assert source.frame_times()[index] == (times[index], times[index] - 1_000_000)
        assert [f[0, 0, 0] for _, f in source.read([12, 30, 13])] == [12, 13, 30]
        with pytest.raises(VideoError, match=r"frame 40 is out of range \(topic /camera/image_raw has 40 messages"):
            list(source.read([40]))


def test_frames_slice_and_timestamps_in_the_run_record(tmp_path: Path, config: Path, video_out: Path, capsys):
    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames_of()}, storage="mcap", start_ns=START, period_ns=PERIOD)
    out = tmp_path / "out"
    assert cli("run", bag / "bag.mcap", "-c", config, "-o", out, "--frames", "2..5", "--no-progress") == 0
    for name in NAMES:
        assert sorted(int(p.stem) for p in (out / name / "npz").iterdir()) == [2, 3, 4]
        for i in (2, 3, 4):
            assert np.array_equal(npz(out, name, i), npz(video_out, name, i)), (name, i)
    (record,) = [json.loads(p.read_text()) for p in (out / ".logs").glob("run-*.json")]
    assert record["source"]["topic"] == TOPIC and record["frames_requested"] == [2, 5]
    assert record["frame_times"] == {  # [log time, header stamp] of each frame computed
        str(i): [START + i * PERIOD, START + i * PERIOD - 1_000_000] for i in (2, 3, 4)}
    # the same messages from the rosbag2 directory and as a ROS 1 bag are the same source: the rest resumes there
    ros1 = write_image_bag(tmp_path / "copy.bag", {TOPIC: frames_of()}, storage="ros1", start_ns=START,
                           period_ns=PERIOD)
    assert cli("run", ros1, "-c", config, "-o", out, "--frames", "0..3", "--no-progress") == 0
    assert sorted(int(p.stem) for p in (out / "rgb" / "npz").iterdir()) == [0, 1, 2, 3, 4]
    assert cli("info", out) == 0
    assert f"  source: {(bag / 'bag.mcap').resolve()} (64x48, 7 frames, topic {TOPIC})" in capsys.readouterr().out
    other = write_image_bag(tmp_path / "other", {TOPIC: frames_of()}, storage="mcap", start_ns=START + 1)
    assert cli("run", other, "-c", config, "-o", out, "--no-progress") == 1  # other log times: another recording


def test_jpeg_compressed_images(tmp_path: Path, config: Path):
    frames = frames_of(5)
    bag = write_image_bag(tmp_path / "bag", {"/camera/image_raw/compressed": frames}, storage="sqlite3",
                          encoding="jpeg")
    out = tmp_path / "out"
    assert cli("run", bag, "-c", config, "-o", out, "--no-progress") == 0  # its only image topic, by default
    decoded = []
    for i, frame in enumerate(frames):
        jpeg = cv2.imencode(".jpg", frame[..., ::-1])[1].tobytes()
        reference = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))  # libjpeg through PIL, not OpenCV
        got = npz(out, "rgb", i)
        assert np.abs(got.astype(int) - reference).max() <= 2, i
        assert np.abs(got.astype(int) - frame).mean() < 40  # JPEG of random blocks: lossy, but the same picture
        decoded.append(got)
    video_out = tmp_path / "video_out"  # hsv and edges of exactly the decoded pictures
    video = write_lossless_video(tmp_path / "decoded.mov", decoded)
    assert cli("run", video, "-c", config, "-o", video_out, "--no-progress") == 0
    for name in NAMES:
        for i in range(5):
            assert np.array_equal(npz(out, name, i), npz(video_out, name, i)), (name, i)


@pytest.mark.parametrize("encoding", ["rgba8", "bgra8", "mono8"])
def test_other_8_bit_encodings(tmp_path: Path, encoding: str):
    frames = frames_of(3)
    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames}, encoding=encoding, row_padding=2)
    with open_input(bag) as source:
        for (_, got), frame in zip(source.read(range(3)), frames):
            expected = np.repeat(frame[..., :1], 3, axis=2) if encoding == "mono8" else frame
            assert np.array_equal(got, expected)


@pytest.mark.parametrize("encoding,frame", [("16UC1", np.zeros((48, 64), np.uint16)),
                                            ("bayer_rggb8", np.zeros((48, 64), np.uint8))])
def test_an_unsupported_encoding_is_one_line_naming_topic_and_encoding(tmp_path: Path, config: Path, capsys,
                                                                       encoding: str, frame: np.ndarray):
    bag = write_image_bag(tmp_path / "bag", {"/depth": [frame] * 2}, encoding=encoding)
    assert cli("run", bag, "-c", config, "-o", tmp_path / "out", "--no-progress") == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("vre-fast: error: ")
    assert f"topic /depth, message 0: encoding '{encoding}' is not supported (supported: rgb8, bgr8" in err
    assert not (tmp_path / "out").exists()


def test_topics_missing_several_or_not_images_are_named(tmp_path: Path, config: Path, capsys):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    frames = frames_of(2)
    two = write_image_bag(tmp_path / "two", {"/left": frames, "/right": frames})

    def error(*argv: object) -> str:
        assert cli("run", *argv, "-c", config, "-o", tmp_path / "out", "--no-progress") == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        return err

    assert error(two) == (f"vre-fast: error: {two}: 2 image topics (/left, /right): choose one with --topic")
    assert error(two, "--topic", "/front") == (f"vre-fast: error: {two}: no topic /front; its topics: /left "
                                               f"(sensor_msgs/msg/Image), /right (sensor_msgs/msg/Image)")
    store = get_typestore(Stores.ROS2_HUMBLE)
    text = store.types["std_msgs/msg/String"]
    with Writer(tmp_path / "status", version=9) as writer:
        connection = writer.add_connection("/status", text.__msgtype__, typestore=store)
        writer.write(connection, START, store.serialize_cdr(text(data="ok"), text.__msgtype__))
    status = tmp_path / "status"
    assert "no image topic (sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage); its topics: /status " \
           "(std_msgs/msg/String)" in error(status)
    assert "topic /status holds std_msgs/msg/String, not images" in error(status, "--topic", "/status")
    video = make_video(tmp_path / "v.mp4", num_frames=2)
    assert "--topic /left is for ROS bags" in error(video, "--topic", "/left")
    resized = write_image_bag(tmp_path / "resized", {TOPIC: [*frames, frames_of(3)[2][:32]]})
    assert f"topic {TOPIC}, message 2 is 64x32, the topic's first is 64x48" in error(resized)
    assert "ROS bag not found" in error(tmp_path / "none.mcap")


def test_stream_plays_the_bag_in_order_and_paced(tmp_path: Path, config: Path):
    frames = frames_of(5)
    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames}, storage="mcap", period_ns=50_000_000)
    source = open_source(str(bag), topic=TOPIC, pace=True)
    started = time.perf_counter()
    got = [(f.frame_id, f.image) for f in source.frames()]
    assert time.perf_counter() - started >= 0.2  # 4 periods of 50 ms between the first and the last
    assert [i for i, _ in got] == list(range(5)) and all(np.array_equal(a, b) for (_, a), b in zip(got, frames))
    stats = tmp_path / "stats.json"
    assert cli("stream", "-c", config, "--source", bag, "--topic", TOPIC, "--sink", "null", "--policy", "all",
               "--stats-json", stats, "--quiet") == 0
    assert json.loads(stats.read_text())["processed"] == 5
    with pytest.raises(VreError, match="--topic /x is for ROS bag sources"):
        open_source(str(make_video(tmp_path / "v.mp4", num_frames=2)), topic="/x")


def test_compressed_formats_of_image_transport_and_what_is_refused():
    from types import SimpleNamespace

    from vre_fast.sources.rosbag import _compressed_to_rgb

    frame = frames_of(1)[0]
    png = cv2.imencode(".png", frame[..., ::-1])[1].reshape(-1)
    for fmt in ("rgb8; png compressed bgr8", "png", ""):  # decoded by what the bytes are, as image_transport's are
        assert np.array_equal(_compressed_to_rgb(SimpleNamespace(format=fmt, data=png), "w"), frame)
    grey = cv2.imencode(".png", frame[..., 0])[1].reshape(-1)
    assert np.array_equal(_compressed_to_rgb(SimpleNamespace(format="mono8; png compressed", data=grey), "w"),
                          np.repeat(frame[..., :1], 3, axis=2))
    depth = cv2.imencode(".png", np.full((4, 4), 1000, np.uint16))[1].reshape(-1)
    with pytest.raises(VideoError, match=r"format '16UC1; png compressed' holds uint16 pixels; only 8-bit"):
        _compressed_to_rgb(SimpleNamespace(format="16UC1; png compressed", data=depth), "w")
    compressed_depth = np.concatenate([np.zeros(12, np.uint8), depth])  # compressed_depth_image_transport's header
    with pytest.raises(VideoError, match=r"format '16UC1; compressedDepth png' is not supported \(supported: jpeg"):
        _compressed_to_rgb(SimpleNamespace(format="16UC1; compressedDepth png", data=compressed_depth), "w")


def test_a_sqlite3_bag_without_message_definitions_reads_with_the_standard_types(tmp_path: Path):
    """rosbag2 sqlite3 bags recorded before ROS 2 Iron carry no definitions."""
    import apsw

    frames = frames_of(2)
    bag = write_image_bag(tmp_path / "old", {TOPIC: frames}, storage="sqlite3")
    db = apsw.Connection(str(bag / "old.db3"))
    db.execute("DELETE FROM message_definitions")
    db.close()
    with open_input(bag) as source:
        assert all(np.array_equal(f, g) for (_, f), g in zip(source.read([0, 1]), frames))


def test_stream_resizes_a_bag_to_size(tmp_path: Path):
    bag = write_image_bag(tmp_path / "bag.bag", {TOPIC: frames_of(2)}, storage="ros1")
    assert [f.image.shape for f in open_source(str(bag), size=(24, 32)).frames()] == [(24, 32, 3)] * 2


@pytest.mark.parametrize("storage", ["mcap", "ros1"])
def test_a_truncated_bag_is_one_line_naming_it(tmp_path: Path, config: Path, capsys, storage: str):
    bag = write_image_bag(tmp_path / ("b.bag" if storage == "ros1" else "b"), {TOPIC: frames_of(4)}, storage=storage)
    data = bag / "b.mcap" if storage == "mcap" else bag
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    assert cli("run", data, "-c", config, "-o", tmp_path / "out", "--no-progress") == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"vre-fast: error: cannot open ROS bag {data}: ")


def test_without_the_ros_extra_a_bag_is_one_line_saying_what_to_install(tmp_path: Path, monkeypatch):
    import sys

    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames_of(1)})
    monkeypatch.setitem(sys.modules, "rosbags.highlevel", None)  # what an environment without rosbags sees
    with pytest.raises(VideoError, match=r"reading ROS bags needs the `rosbags` package: pip install 'vre-fast\[ros\]'"):
        open_input(bag)


def test_source_records_written_before_topics_existed_still_read():
    from vre_fast.store import SourceIdentity

    old = {"path": "/v.mp4", "size_bytes": 1, "height": 2, "width": 3, "num_frames": 4, "fps": "10", "fingerprint": "f"}
    assert SourceIdentity.from_json(old).topic is None
    assert SourceIdentity.from_json({**old, "topic": TOPIC}).topic == TOPIC
    with pytest.raises(TypeError):
        SourceIdentity.from_json({**old, "topic": 5})


def test_an_empty_message_says_it_is_empty():
    """Drivers publish empty images (0x0, no data) while a camera starts: the error says so, not that the
    format is unsupported or the rows too short."""
    from types import SimpleNamespace

    from vre_fast.sources.rosbag import _compressed_to_rgb, _image_to_rgb

    empty = np.zeros(0, np.uint8)
    with pytest.raises(VideoError, match=r"^w: an empty rgb8 image \(0x0, 0 bytes of data\)$"):
        _image_to_rgb(SimpleNamespace(encoding="rgb8", height=0, width=0, step=0, data=empty), "w")
    with pytest.raises(VideoError, match=r"^w: an empty mono8 image \(0x4, 0 bytes of data\)$"):
        _image_to_rgb(SimpleNamespace(encoding="mono8", height=4, width=0, step=0, data=empty), "w")
    with pytest.raises(VideoError, match=r"^w: an empty CompressedImage \(format 'jpeg', 0 bytes of data\)$"):
        _compressed_to_rgb(SimpleNamespace(format="jpeg", data=empty), "w")


def test_a_rosbag2_directory_without_its_metadata_says_so(tmp_path: Path, config: Path, capsys):
    """A recording still running (or killed) has its storage file but no metadata.yaml yet: one line saying that
    and naming the file, which can be read as it is (sqlite3), not 'bag.db3 is not a frame'."""
    bag = write_image_bag(tmp_path / "bag", {TOPIC: frames_of(2)}, storage="sqlite3")
    (bag / "metadata.yaml").unlink()
    for argv in (["run", bag, "-c", config, "-o", tmp_path / "out", "--no-progress"],
                 ["stream", "-c", config, "--source", bag, "--sink", "null", "--quiet"]):
        assert cli(*argv) == 1
        err = capsys.readouterr().err.strip()
        assert err == (f"vre-fast: error: {bag}: a rosbag2 directory without its metadata.yaml (still recording, or "
                       f"the recorder was stopped before writing it); read a storage file as it is ({bag / 'bag.db3'}) "
                       f"or rebuild the metadata with `ros2 bag reindex`"), err
    assert cli("run", bag / "bag.db3", "-c", config, "-o", tmp_path / "out", "--no-progress") == 0


def test_a_ros1_bag_still_being_recorded_says_so(tmp_path: Path, config: Path, capsys):
    """`rosbag record` writes NAME.bag.active, unindexed until it stops: named as such, not as a bad video."""
    bag = write_image_bag(tmp_path / "b.bag", {TOPIC: frames_of(2)}, storage="ros1")
    active = bag.rename(tmp_path / "b.bag.active")
    assert cli("run", active, "-c", config, "-o", tmp_path / "out", "--no-progress") == 1
    assert capsys.readouterr().err.strip() == (
        f"vre-fast: error: {active}: a ROS 1 bag still being recorded (or its recorder was killed): it has no index "
        f"yet; read it once `rosbag record` has stopped, or index it with `rosbag reindex` and rename it to .bag")
