"""Rerun recordings (`vre-fast view`, `vre-fast stream --sink out.rrd | rerun://HOST:PORT`), read back with
Rerun's own .rrd reader (rerun.chunk.RrdReader): every representation on every frame, pixels as stored."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from conftest import free_port, make_video

rr = pytest.importorskip("rerun", reason="the Rerun SDK (rerun-sdk, the `rerun` extra; Python >= 3.11)")
from rerun.chunk import RrdReader  # noqa: E402

from vre_fast.cli import main  # noqa: E402
from vre_fast.collage import stored_representations  # noqa: E402
from vre_fast.rerun_view import grpc_url  # noqa: E402

FRAMES, H, W = 3, 48, 64
CLASSES = ["ground", "building", "sky"]


def chunks(path: Path) -> list:
    with warnings.catch_warnings():  # a file saved by `rerun --save` has no footer: Rerun warns, then reads it
        warnings.simplefilter("ignore")
        return RrdReader(path).stream().to_chunks()


def timelines(path: Path) -> set[str]:
    return {name for chunk in chunks(path) for name in chunk.timeline_names}


def read_rrd(path: Path) -> dict[str, dict]:
    """entity path -> {"frames": {frame: {column: value}}, "static": {column: value}} from Rerun's reader."""
    entities: dict[str, dict] = defaultdict(lambda: {"frames": {}, "static": {}})
    for chunk in chunks(path):
        batch = chunk.to_record_batch()
        components = [n for n in batch.schema.names if ":" in n]
        for i in range(batch.num_rows):
            row = {n: batch.column(n)[i] for n in components}
            if chunk.is_static:
                entities[chunk.entity_path]["static"].update(row)
            else:
                frame = batch.column("frame")[i].as_py()
                entities[chunk.entity_path]["frames"].setdefault(frame, {}).update(row)
                if "video_time" in batch.schema.names:
                    entities[chunk.entity_path]["frames"][frame]["video_time"] = batch.column("video_time")[i]
    return entities


def pixels(row: dict, archetype: str, dtype: type = np.uint8) -> np.ndarray:
    """The logged image's buffer, shaped by its format."""
    fmt = row[f"{archetype}:format"].values[0].as_py()
    buffer = row[f"{archetype}:buffer"].values[0].values.to_numpy(zero_copy_only=False).view(dtype)
    image = buffer.reshape(fmt["height"], fmt["width"], -1)
    return image[..., 0] if image.shape[-1] == 1 else image


def unpack_rgba(packed: int) -> tuple[int, int, int]:
    return packed >> 24 & 255, packed >> 16 & 255, packed >> 8 & 255


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset with an image, a float picture, flow, an external depth map feeding normals, and a class
    map with names."""
    from test_run import write_plane_depth

    root = tmp_path_factory.mktemp("rerun")
    video = make_video(root / "video.mp4", num_frames=FRAMES, height=H, width=W)  # 10 fps
    write_plane_depth(root / "depth", FRAMES, H, W)
    (root / "sem").mkdir()
    for i in range(FRAMES):
        classes = np.zeros((H, W), np.uint8)
        classes[:, W // 2:], classes[: 10 + i] = 1, 2
        classes[-5:, :5] = 255  # unmapped
        np.savez(root / "sem" / f"{i}.npz", classes)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {
        "rgb": {"type": "rgb"}, "hsv": {"type": "hsv"},
        "flow": {"type": "optical_flow_classical"},
        "depth": {"type": "external", "parameters": {"path": str(root / "depth")}},
        "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}},
        "semantic": {"type": "external", "parameters": {"path": str(root / "sem"), "classes": CLASSES}}}}))
    assert main(["run", str(video), "-c", str(cfg), "-o", str(root / "out"), "--no-progress"]) == 0
    return root / "out"


def test_view_logs_every_representation_of_every_frame_as_what_it_is(dataset: Path, tmp_path: Path):
    target = tmp_path / "out.rrd"
    assert main(["view", str(dataset), "-o", str(target)]) == 0
    entities = read_rrd(target)
    names = ["depth", "flow", "hsv", "normals", "rgb", "semantic"]
    assert {e for e in entities if not e.startswith("/__")} == {f"/{n}" for n in names} | {"/flow/raw"}
    for entity in [*names, "flow/raw"]:
        assert sorted(entities[f"/{entity}"]["frames"]) == list(range(FRAMES)), entity
    assert [entities["/rgb"]["frames"][f]["video_time"].as_py().total_seconds() for f in range(FRAMES)] == \
        [0.0, 0.1, 0.2]  # frame / the video's 10 fps

    reps = {rep.name: (rep, files) for rep, files in stored_representations(dataset)}
    for frame in range(FRAMES):
        stored = {name: rep.decode(files.read(frame)) for name, (rep, files) in reps.items()}
        logged = {name: entities[f"/{name}"]["frames"][frame] for name in names}
        assert "Image:buffer" in logged["rgb"] and "Image:buffer" in logged["hsv"]
        np.testing.assert_array_equal(pixels(logged["rgb"], "Image"), stored["rgb"])
        for name in ("hsv", "flow", "normals"):  # pictures: each representation's own make_image
            np.testing.assert_array_equal(pixels(logged[name], "Image"), reps[name][0].make_image(stored[name][None])[0])
        np.testing.assert_array_equal(pixels(logged["semantic"], "SegmentationImage"), stored["semantic"])
        # the external depth feeds normals_svd's depth input: logged as a depth image, its values as stored
        np.testing.assert_array_equal(pixels(logged["depth"], "DepthImage", np.float32), stored["depth"])
        raw = entities["/flow/raw"]["frames"][frame]["Tensor:data"].values[0]
        assert raw["shape"].as_py() == [H, W, 2]
        np.testing.assert_array_equal(np.array(raw["buffer"].value.as_py(), np.float32).reshape(H, W, 2),
                                      stored["flow"])

    context = entities["/semantic"]["static"]["AnnotationContext:context"].as_py()[0]
    infos = {c["class_id"]: c["class_description"]["info"] for c in context}
    assert {i: infos[i]["label"] for i in infos} == {0: "ground", 1: "building", 2: "sky", 255: "unmapped"}
    drawn = reps["semantic"][0].make_image(np.array([[[0, 1, 2, 255]]], np.uint8))[0, 0]
    assert [unpack_rgba(infos[i]["color"]) for i in (0, 1, 2, 255)] == [tuple(c) for c in drawn.tolist()]
    assert RrdReader(target).blueprints(), "a blueprint (one 2D view per representation) comes with the file"
    assert timelines(target) == {"frame", "video_time"}  # no log_time: a stored dataset has no wall clock


def test_view_frames_and_mistakes(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    target = tmp_path / "some.rrd"
    assert main(["view", str(dataset), "-o", str(target), "--frames", "1..2"]) == 0
    assert sorted(read_rrd(target)["/rgb"]["frames"]) == [1]

    assert main(["view", str(dataset), "-o", str(tmp_path / "x.txt")]) == 1
    assert "vre-fast: error: -o " in capsys.readouterr().err
    assert main(["view", str(dataset), "-o", str(target), "--frames", "50.."]) == 1
    assert "no stored frame" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "nothing"), "-o", str(target)]) == 1
    assert "no representations" in capsys.readouterr().err
    assert main(["view", str(dataset), "-o", str(target / "under_a_file.rrd")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vre-fast: error: {target}") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [target]  # the failed ones left no temporary file


def test_view_on_error_skip_leaves_out_an_unreadable_file(dataset: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture):
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(dataset, copy)
    (copy / "hsv" / "npz" / "1.npz").write_bytes(b"not a zip")
    assert main(["view", str(copy), "-o", str(tmp_path / "a.rrd")]) == 1
    assert "hsv/npz/1.npz" in capsys.readouterr().err and not (tmp_path / "a.rrd").exists()
    assert main(["view", str(copy), "-o", str(tmp_path / "a.rrd"), "--on-error", "skip"]) == 0
    entities = read_rrd(tmp_path / "a.rrd")
    assert sorted(entities["/hsv"]["frames"]) == [0, 2] and sorted(entities["/rgb"]["frames"]) == [0, 1, 2]


STREAM_CFG = {"representations": {"rgb": {"type": "rgb"}, "edges": {"type": "edges_canny"}}}


def stream_to(sink: str, tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    video = make_video(tmp_path / "stream.mp4", num_frames=4, height=H, width=W)
    cfg = tmp_path / "stream.yaml"
    cfg.write_text(yaml.safe_dump(STREAM_CFG))
    assert main(["stream", "-c", str(cfg), "--source", str(video), "--policy", "all", "--sink", sink,
                 "--quiet"]) == 0
    with av.open(str(video)) as container:
        return video, [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def check_streamed(recording: Path, frames: list[np.ndarray]) -> None:
    entities = read_rrd(recording)
    assert sorted(entities["/rgb"]["frames"]) == sorted(entities["/edges"]["frames"]) == list(range(len(frames)))
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(pixels(entities["/rgb"]["frames"][i], "Image"), frame)
    assert timelines(recording) == {"frame", "log_time"}  # a stream's wall clock; no video time


def test_stream_sink_writes_an_rrd_of_the_streamed_frames(tmp_path: Path):
    _, frames = stream_to(str(tmp_path / "live.rrd"), tmp_path)
    check_streamed(tmp_path / "live.rrd", frames)


def test_stream_sink_sends_to_a_rerun_viewer_over_grpc(tmp_path: Path):
    """A headless `rerun` (the SDK's own CLI) listens as a viewer would and saves what it receives."""
    port, saved = free_port(), tmp_path / "received.rrd"
    server = subprocess.Popen([sys.executable, "-m", "rerun_cli", "--bind", "127.0.0.1", "--port", str(port),
                               "--save", str(saved)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            assert time.monotonic() < deadline and server.poll() is None, "the rerun server did not start"
            time.sleep(0.05)
        _, frames = stream_to(f"rerun://127.0.0.1:{port}", tmp_path)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    check_streamed(saved, frames)


def test_stream_sink_without_a_viewer_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture):
    cfg = tmp_path / "stream.yaml"
    cfg.write_text(yaml.safe_dump(STREAM_CFG))
    port = free_port()
    assert main(["stream", "-c", str(cfg), "--source", "stdin", "--size", "8x8", "--sink",
                 f"rerun://127.0.0.1:{port}", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"vre-fast: error: --sink rerun://127.0.0.1:{port}: no Rerun viewer there" in err and "Traceback" not in err


def test_viewer_urls():
    assert grpc_url("rerun://10.0.0.2:9000", "-o")[0] == "rerun+http://10.0.0.2:9000/proxy"
    assert grpc_url("rerun://", "-o")[0] == "rerun+http://127.0.0.1:9876/proxy"
    assert grpc_url("rerun+https://example.org:443/proxy", "-o")[0] == "rerun+https://example.org:443/proxy"
    from vre_fast.errors import VreError

    with pytest.raises(VreError, match="port"):
        grpc_url("rerun://h:notaport", "--sink")
    with pytest.raises(VreError, match="/proxy"):
        grpc_url("rerun://h:1/catalog", "--sink")


def test_depth_and_flow_experts_declare_their_kind():
    from conftest import rep_of

    from vre_fast.rerun_view import _kinds

    reps = [rep_of("depth_anything", variant="test"), rep_of("depth_marigold", variant="test"),
            rep_of("optical_flow_raft", variant="small_random"), rep_of("edges_canny"), rep_of("rgb")]
    for i, rep in enumerate(reps):
        rep.name = f"r{i}"
    assert list(_kinds(reps).values()) == ["depth", "depth", "flow", "image", "image"]


def test_without_the_sdk_the_error_says_what_to_install(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture):
    monkeypatch.setitem(sys.modules, "rerun", None)  # `import rerun` raises ImportError
    assert main(["view", str(dataset), "-o", str(tmp_path / "x.rrd")]) == 1
    assert "pip install 'vre-fast[rerun]'" in capsys.readouterr().err


def test_view_logs_class_probabilities_as_their_argmax(tmp_path: Path):
    """A class map stored as per-class scores (`probabilities: true`) is a segmentation of its argmax, coloured
    as its own make_image draws each class."""
    video = make_video(tmp_path / "video.mp4", num_frames=2, height=H, width=W)
    (tmp_path / "scores").mkdir()
    scores = np.random.default_rng(0).random((2, H, W, len(CLASSES))).astype(np.float32)
    for i in range(2):
        np.savez(tmp_path / "scores" / f"{i}.npz", scores[i])
    cfg = tmp_path / "cfg.yaml"
    (tmp_path / "float_ids").mkdir()  # and a class map of ids stored as floats, as it was logged before
    ids = np.random.default_rng(1).integers(0, len(CLASSES), (2, H, W)).astype(np.float32)
    for i in range(2):
        np.savez(tmp_path / "float_ids" / f"{i}.npz", ids[i])
    cfg.write_text(yaml.safe_dump({"representations": {
        "sem": {"type": "external", "parameters": {"path": str(tmp_path / "scores"), "classes": CLASSES,
                                                   "probabilities": True}},
        "float_ids": {"type": "external", "parameters": {"path": str(tmp_path / "float_ids"), "classes": CLASSES}}}}))
    assert main(["run", str(video), "-c", str(cfg), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert main(["view", str(tmp_path / "out"), "-o", str(tmp_path / "p.rrd")]) == 0
    entities = read_rrd(tmp_path / "p.rrd")
    for i in range(2):
        np.testing.assert_array_equal(pixels(entities["/float_ids"]["frames"][i], "SegmentationImage", np.uint16),
                                      ids[i])
    (rep, files), = [(r, f) for r, f in stored_representations(tmp_path / "out") if r.name == "sem"]
    for i in range(2):
        np.testing.assert_array_equal(pixels(entities["/sem"]["frames"][i], "SegmentationImage"),
                                      rep.decode(files.read(i)).argmax(-1))
    context = entities["/sem"]["static"]["AnnotationContext:context"].as_py()[0]
    infos = {c["class_id"]: c["class_description"]["info"] for c in context}
    assert {i: infos[i]["label"] for i in infos} == dict(enumerate(CLASSES))
    drawn = rep.make_image(np.eye(len(CLASSES), dtype=np.float32)[None, None])[0, 0]
    assert [unpack_rgba(infos[i]["color"]) for i in range(len(CLASSES))] == [tuple(c) for c in drawn.tolist()]


def test_view_frames_list(dataset: Path, tmp_path: Path):
    """`--frames 0 2` as `vre-fast run` takes it (VRE's list form)."""
    target = tmp_path / "list.rrd"
    assert main(["view", str(dataset), "-o", str(target), "--frames", "0", "2"]) == 0
    assert sorted(read_rrd(target)["/rgb"]["frames"]) == [0, 2]


def test_view_of_a_bag_dataset_is_on_the_bag_log_times(tmp_path: Path):
    """A bag has no frame rate (its .source.json rate is nominal, messages over the span): no `video_time`;
    each frame on a `bag_time` timeline at its message's log time, from the run records, across resumed runs."""
    pytest.importorskip("rosbags", reason="the `ros` extra (rosbags) is not installed")
    from vre_fast.sources.synthetic import drifting_texture, write_image_bag

    log_times = [1_700_000_000 * 10**9 + t for t in (0, 40_000_000, 45_000_000, 900_000_000)]  # a gap, a burst
    bag = write_image_bag(tmp_path / "bag", {"/cam": list(drifting_texture(4, H, W))}, log_times=log_times)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {"rgb": {"type": "rgb"}}}))
    for frames in ("0..2", "2.."):  # two runs, two run records
        assert main(["run", str(bag), "-c", str(cfg), "-o", str(tmp_path / "out"), "--frames", frames,
                     "--no-progress"]) == 0
    assert main(["view", str(tmp_path / "out"), "-o", str(tmp_path / "bag.rrd")]) == 0
    assert timelines(tmp_path / "bag.rrd") == {"frame", "bag_time"}
    times = {}
    for chunk in chunks(tmp_path / "bag.rrd"):
        batch = chunk.to_record_batch()
        if chunk.entity_path == "/rgb" and not chunk.is_static:
            times.update(zip(batch.column("frame").to_pylist(),
                             batch.column("bag_time").cast("int64").to_pylist()))
    assert times == dict(enumerate(log_times))
