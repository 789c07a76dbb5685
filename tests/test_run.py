"""End-to-end `vre-fast run` in-process: outputs, slicing, re-entrancy, dependencies, errors."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from conftest import make_video

from vre_fast import RunOptions, StoreError, VideoError, parse_config, register_representation, run
from vre_fast.cli import main
from vre_fast.kernels.hsv import hsv_numpy
from vre_fast.kernels.normals_svd import intrinsics_from_fov, normals_svd_numpy
from vre_fast.representation import ComputeBatch, Representation
from vre_fast.representations.optical_flow_classical import OpticalFlowClassical

PROCEDURAL = {
    "rgb": {"type": "rgb"},
    "hsv": {"type": "hsv"},
    "edges": {"type": "edges_canny", "parameters": {"threshold1": 60, "threshold2": 150}},
    "flow": {"type": "optical_flow_classical", "batch_size": 3},
}


def do_run(video: Path, out: Path, reprs: dict, frames=(None, None), **top) -> object:
    cfg = parse_config({"batch_size": 4, **top, "representations": reprs})
    return run(video, cfg, out, RunOptions(frames=frames, progress=False))


def npz(out: Path, name: str, frame: int) -> np.ndarray:
    with np.load(out / name / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


def metadata(out: Path, name: str) -> dict:
    """The merged view a new run would see: json plus any journals."""
    from vre_fast.store import RepresentationMetadata

    md = RepresentationMetadata.read(out / name)
    return {"frames": md.frames, "failed": md.failed, "definition": md.definition}


def decoded_frames(video: Path) -> list[np.ndarray]:
    with av.open(str(video)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_outputs_equal_references(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = do_run(video, out, PROCEDURAL, output_formats=["npz", "png"])
    frames = decoded_frames(video)
    n = len(frames)
    flow_rep = OpticalFlowClassical("f", OpticalFlowClassical.Params(), {}, type_name="optical_flow_classical")
    for i, frame in enumerate(frames):
        assert np.array_equal(npz(out, "rgb", i), frame)
        hsv = npz(out, "hsv", i)
        assert hsv.dtype == np.float16
        np.testing.assert_allclose(hsv.astype(np.float32), hsv_numpy(frame), atol=1e-3)  # float16 storage
        assert np.array_equal(npz(out, "edges", i), cv2.Canny(frame, 60, 150) // 255)
        nxt = frames[min(i + 1, n - 1)]
        expected_flow = flow_rep.compute(ComputeBatch([i], frame[None], nxt[None], {}))[0]
        np.testing.assert_allclose(npz(out, "flow", i), expected_flow, atol=1e-6)
        for name in PROCEDURAL:
            png = cv2.imread(str(out / name / "png" / f"{i}.png"))
            assert png is not None and png.shape == (*frame.shape[:2], 3)
    assert not npz(out, "flow", n - 1).any()  # the last frame has no successor
    record = json.loads((out / ".logs" / f"run-{result.run_id}.json").read_text())
    assert record["status"] == "completed" and record["frames_done"] == n and record["frames_failed"] == 0
    assert record["frames_requested"] == [0, n] and record["config_hash"]
    assert record["representations"]["hsv"]["computed"] == n and record["representations"]["hsv"]["seconds_per_frame"]
    assert (out / ".logs" / f"run-{result.run_id}.log").exists()
    for name in PROCEDURAL:
        md = metadata(out, name)
        assert sorted(md["frames"]) == list(range(n))
        assert all(e["run_id"] == result.run_id and e["formats"] == ["npz", "png"] for e in md["frames"].values())


def test_frame_slice_writes_exactly_those_frames(video: Path, tmp_path: Path):
    full, part = tmp_path / "full", tmp_path / "part"
    do_run(video, full, PROCEDURAL)
    do_run(video, part, PROCEDURAL, frames=(5, 9))
    for name in PROCEDURAL:
        assert sorted(int(p.stem) for p in (part / name / "npz").iterdir()) == [5, 6, 7, 8]
        for i in range(5, 9):
            assert np.array_equal(npz(part, name, i), npz(full, name, i)), (name, i)
    with pytest.raises(VideoError, match=r"video\.mp4: --frames 20\.\.30 is past the end of the video \(the video "
                                         r"has 24 frames: 0\.\.24\)"):
        do_run(video, part, PROCEDURAL, frames=(20, 30))
    for empty in ((24, None), (30, None), (5, 5)):  # before: "Nothing to compute", as if done
        with pytest.raises(VideoError, match=r"--frames \d+\.\.\d+ is empty"):
            do_run(video, part, PROCEDURAL, frames=empty)


def test_second_run_computes_nothing(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, PROCEDURAL)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    result = do_run(video, out, PROCEDURAL)
    assert result.computed_frames == 0 and result.nothing_to_compute
    assert result.report() == f"Nothing to compute: frames 0..24 of all 4 stored representations are already in {out}."
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == mtimes
    assert len(list((out / ".logs").glob("run-*.json"))) == 1


def test_run_prints_nothing_and_the_cli_prints_its_report(video: Path, tmp_path: Path, capsys):
    """`run` is a library function: its summary, stage line and "Nothing to compute" are the CLI's to print."""
    cfg, out = parse_config({"representations": PROCEDURAL}), tmp_path / "out"
    result = run(video, cfg, out, RunOptions(frames=(0, 4)))
    assert capsys.readouterr() == ("", "")
    assert not result.nothing_to_compute and result.stages is not None and result.stages.wall > 0
    lines = result.report().splitlines()
    assert lines[0].startswith("stages: wall ") and "over the writer threads" in lines[0]
    assert lines[1].split() == ["representation", "type", "computed", "loaded", "skipped", "failed", "ms/frame",
                                "frames/s"]
    assert [line.split()[:5] for line in lines[3:]] == [[name, body["type"], "4", "0", "0"]
                                                        for name, body in PROCEDURAL.items()]
    assert run(video, cfg, out, RunOptions(frames=(0, 4))).nothing_to_compute and capsys.readouterr() == ("", "")

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump({"representations": PROCEDURAL}))
    assert main(["run", str(video), "-c", str(cfg_file), "-o", str(out), "--frames", "0..4", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (f"Nothing to compute: frames 0..4 of all 4 stored representations "
                                                    f"are already in {out}.\n")
    assert main(["run", str(video), "-c", str(cfg_file), "-o", str(out), "--frames", "0..6", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("stages: wall ") and err[1].split()[0] == "representation" and len(err) == 3 + 4


def test_changed_parameters_are_refused_and_new_formats_added(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, PROCEDURAL)
    before = npz(out, "edges", 3)
    changed = {**PROCEDURAL, "edges": {"type": "edges_canny", "parameters": {"threshold1": 10}}}
    with pytest.raises(StoreError, match=r"'edges' .* different definition \(parameters\.threshold1: 60\.0 on disk, "
                                         r"10\.0 now.*Refusing to mix"):
        do_run(video, out, changed)
    assert np.array_equal(npz(out, "edges", 3), before)
    do_run(video, out, PROCEDURAL, output_formats=["npz", "jpg"])  # same definition, one more format
    assert len(list((out / "edges" / "jpg").glob("*.jpg"))) == 24


def write_plane_depth(folder: Path, n: int, h: int, w: int) -> np.ndarray:
    folder.mkdir()
    fx, fy, cx, cy = intrinsics_from_fov(75, (3840, 2160), (w, h))
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    normal = np.array([0.0, 0.8, 0.6])
    depths = []
    for i in range(n):
        rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones((h, w))], -1)
        depth = ((10 + i) / (rays @ normal)).astype(np.float32)
        depth[h // 2, :5] = 0  # a hole
        np.savez(folder / f"{i}.npz", depth)
        depths.append(depth)
    return np.stack(depths)


def test_external_depth_normals_and_dependencies_loaded_from_disk(video: Path, tmp_path: Path):
    depths = write_plane_depth(tmp_path / "depth", 24, 48, 64)
    reprs = {
        "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}, "output_formats": []},
        "normals": {"type": "normals_svd", "dependencies": ["depth"],
                    "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 5}},
    }
    out = tmp_path / "out"
    do_run(video, out, reprs)
    intr = intrinsics_from_fov(75, (3840, 2160), (64, 48))
    for i in (0, 11, 23):
        expected = normals_svd_numpy(depths[i], intr, 5)
        np.testing.assert_allclose(npz(out, "normals", i).astype(np.float32), expected, atol=1e-3)
    assert not (out / "depth").exists()  # output_formats: [] -> a pure dependency, never stored

    more = {**reprs, "safe": {"type": "safe_landing", "dependencies": ["normals"],
                              "parameters": {"max_angle_deg": 40, "reference_axis": [0, 0.8, 0.6]}}}
    result = do_run(video, out, more)
    stats = {b.name: b.stats for b in result.bindings}
    assert stats["normals"].computed == 0 and stats["normals"].loaded == 24
    assert stats["depth"].computed == 0 and stats["safe"].computed == 24
    safe = npz(out, "safe", 4)
    assert safe.dtype == np.uint8 and safe[5:-5, 5:-5].all() and not safe[24, :3].any()


def test_a_dataset_recorded_under_another_alias_resumes_and_another_type_is_refused(video: Path, tmp_path: Path):
    """Datasets written while `type: external` was recorded as `from_disk` (one class, two names) are not stale:
    resuming computes only the new frames and leaves the recorded name as it is."""
    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    reprs = {"depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}},
             "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}}}
    out = tmp_path / "out"
    do_run(video, out, reprs, frames=(0, 4))
    for name in ("depth", "normals"):  # what the metadata of an older vre-fast says
        path = out / name / ".metadata.json"
        path.write_text(path.read_text().replace('"type": "external"', '"type": "from_disk"'))
    result = do_run(video, out, reprs, frames=(0, 8))
    assert {b.name: b.stats.computed for b in result.bindings} == {"depth": 4, "normals": 4}
    assert metadata(out, "normals")["definition"]["inputs"]["depth"]["type"] == "from_disk"
    path = out / "depth" / ".metadata.json"
    path.write_text(path.read_text().replace('"type": "from_disk"', '"type": "hsv"'))
    with pytest.raises(StoreError, match=r"'depth' .* different definition \(type: 'hsv' on disk, 'external' now"):
        do_run(video, out, reprs, frames=(0, 8))


@register_representation("test_counting_expert")
class CountingExpert(Representation):
    """A stand-in for a learned expert: counts how often its weights would be loaded."""

    setups = 0

    def setup(self, device: str) -> None:
        type(self).setups += 1

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.frames.mean(-1).astype(np.float32)


def test_expert_is_not_set_up_when_its_output_is_on_disk(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    CountingExpert.setups = 0
    reprs = {"expert": {"type": "test_counting_expert"}}
    do_run(video, out, reprs)
    assert CountingExpert.setups == 1
    do_run(video, out, {**reprs, "mask": {"type": "external", "parameters": {"path": "unused"},
                                          "output_formats": []},
                        "copy": {"type": "hsv"}})
    assert CountingExpert.setups == 1  # nothing new needs it


def test_missing_external_frame_stops_and_keeps_finished_frames(video: Path, tmp_path: Path):
    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    (tmp_path / "depth" / "13.npz").unlink()
    reprs = {"rgb": {"type": "rgb"},
             "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}},
             "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}}}
    out = tmp_path / "out"
    with pytest.raises(Exception, match=r"representation 'depth' failed on frame 13: FileNotFoundError: no file "
                                        r"for frame 13 in .*depth \(looked for 13\.npz"):
        do_run(video, out, reprs)
    done = sorted(metadata(out, "normals")["frames"])
    assert done == list(range(12))  # batches of 4: frames 0..11 finished before the failing batch
    assert all((out / "normals" / "npz" / f"{i}.npz").exists() for i in done)
    record = json.loads(next((out / ".logs").glob("run-*.json")).read_text())
    assert record["status"] == "failed" and "frame 13" in record["error"]

    skip = run(video, parse_config({"batch_size": 4, "representations": reprs}), out,
               RunOptions(on_error="skip", progress=False))
    assert skip.record.frames_failed == 1 and skip.record.frames_done == 11
    assert list(metadata(out, "depth")["failed"]) == [13] and list(metadata(out, "normals")["failed"]) == [13]
    assert "dependency 'depth' failed" in metadata(out, "normals")["failed"][13]["error"]
    assert len(metadata(out, "normals")["frames"]) == 23 and len(metadata(out, "rgb")["frames"]) == 24


def test_corrupt_video_fails_naming_file_and_frame_and_keeps_frames(tmp_path: Path):
    video = make_video(tmp_path / "clip.mkv", num_frames=40, gop=5)
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 2 // 3])
    out = tmp_path / "out"
    with pytest.raises(VideoError, match=r"clip\.mkv: the video ends after frame (\d+) but frame \d+ was asked") as e:
        do_run(video, out, {"rgb": {"type": "rgb"}})
    last = int(e.value.args[0].split("after frame ")[1].split()[0])
    assert last > 4
    kept = sorted(metadata(out, "rgb")["frames"])
    assert kept and kept == list(range(len(kept))) and len(kept) >= (last + 1) // 4 * 4
    for i in kept:
        npz(out, "rgb", i)


def test_output_size_resizes_every_output(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, {"hsv": {"type": "hsv"}, "edges": {"type": "edges_canny", "output_size": [12, 16]}},
           output_size=[24, 32])
    assert npz(out, "hsv", 0).shape == (24, 32, 3) and npz(out, "edges", 0).shape == (12, 16)
    assert set(np.unique(npz(out, "edges", 0))) <= {0, 1}


def test_metadata_rebuild(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    do_run(video, out, PROCEDURAL)
    for name in PROCEDURAL:
        (out / name / ".metadata.json").unlink()
    (out / "hsv" / "npz" / "7.npz").write_bytes(b"torn")
    assert main(["metadata", "rebuild", str(out)]) == 1  # no definition left to take
    assert "pass --config" in capsys.readouterr().err
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"batch_size": 4, "representations": PROCEDURAL}))
    assert main(["metadata", "rebuild", str(out), "--config", str(cfg)]) == 0
    assert "hsv: 23 frames; unreadable, left out:" in capsys.readouterr().out
    assert sorted(metadata(out, "hsv")["frames"]) == [i for i in range(24) if i != 7]
    result = do_run(video, out, PROCEDURAL)
    stats = {b.name: b.stats for b in result.bindings}
    assert stats["hsv"].computed == 1 and stats["rgb"].computed == 0 and result.computed_frames == 1
    assert npz(out, "hsv", 7).shape == (48, 64, 3)


def test_cli_run_and_errors(video: Path, tmp_path: Path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"representations": {"rgb": {"type": "rgb"}, "x": {"type": "hsv"}}}))
    out = tmp_path / "out"
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "0..3", "--batch-size", "2",
                 "--output-formats", "npz,jpg", "--compress", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "representation" in err and "ms/frame" in err  # the summary table
    assert sorted(p.name for p in (out / "x" / "jpg").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    record = json.loads(next((out / ".logs").glob("run-*.json")).read_text())
    assert record["argv"][:2] == ["vre-fast", "run"]
    cfg.write_text(yaml.safe_dump({"representations": {"a": {"type": "hsv", "dependencies": ["b"]}}}))
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out)]) == 1
    assert "vre-fast: error: representations.a.dependencies" in capsys.readouterr().err


def test_normals_computed_downsampled_are_resized_back(video: Path, tmp_path: Path):
    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    out = tmp_path / "out"
    do_run(video, out, {
        "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}, "output_formats": []},
        "normals": {"type": "normals_svd", "dependencies": ["depth"],
                    "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 3,
                                   "input_downsample_step": 2}}}, frames=(0, 2))
    normals = npz(out, "normals", 1).astype(np.float32)
    assert normals.shape == (48, 64, 3)
    valid = np.any(normals != 0, -1)
    assert valid.mean() > 0.9
    unit = normals[valid] / np.linalg.norm(normals[valid], axis=-1, keepdims=True)  # float16 storage
    cos = unit @ np.array([0.0, 0.8, 0.6])
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5


def test_cuda_device_without_a_gpu_is_refused_before_decoding(video: Path, tmp_path: Path):
    from vre_fast import ConfigError
    from vre_fast.backends import cuda_available

    if cuda_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ConfigError, match=r"representations \['hsv'\] are set to a CUDA device"):
        do_run(video, tmp_path / "out", {"hsv": {"type": "hsv", "device": "cuda"}})
    with pytest.raises(ConfigError, match=r"representations\.hsv\.device: expected 'cpu', 'cuda' or 'cuda:N'"):
        do_run(video, tmp_path / "out", {"hsv": {"type": "hsv", "device": "gpu"}})


def test_collage_rebuilds_representations_from_their_metadata(video: Path, tmp_path: Path):
    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    out = tmp_path / "out"
    do_run(video, out, {**PROCEDURAL,
                        "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}},
                        "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}},
                        "safe": {"type": "safe_landing", "dependencies": ["normals"]}}, frames=(0, 6))
    assert main(["collage", str(out), "-o", str(tmp_path / "c.mp4"), "--tile", "64x48"]) == 0
    with av.open(str(tmp_path / "c.mp4")) as c:
        pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(pictures) == 6 and pictures[0].shape == (3 * (48 + 24), 3 * 64, 3)  # 7 tiles: a 3x3 grid
    assert main(["collage", str(out), "-o", str(tmp_path / "pngs")]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir())[:2] == ["0.png", "1.png"]


def test_dronescapes2_graph_runs_on_stored_expert_outputs(video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """configs/dronescapes2_external.yaml: the paper's procedural graph on class maps and depth from disk."""
    from vre_fast import load_config

    rng = np.random.default_rng(0)
    for name, classes in (("m2f_swin_mapillary", 65), ("m2f_swin_coco", 133), ("m2f_r50_mapillary", 65)):
        (tmp_path / "data" / name).mkdir(parents=True)
        base = rng.integers(0, classes, (12, 16), dtype=np.uint8)
        for i in range(3):
            np.savez(tmp_path / "data" / name / f"{i}.npz", cv2.resize(base, (64, 48), interpolation=cv2.INTER_NEAREST))
    (tmp_path / "data" / "depth_marigold").mkdir()
    for i in range(3):
        np.savez(tmp_path / "data" / "depth_marigold" / f"{i}.npz",
                 np.tile(np.linspace(0.05, 1, 48, dtype=np.float32)[:, None], (1, 64)))
    cfg = load_config(Path(__file__).parents[1] / "configs" / "dronescapes2_external.yaml")
    monkeypatch.chdir(tmp_path)
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 3), progress=False))
    stored = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    for name in ("semantic_output", "buildings", "sky_and_water", "transportation", "containing", "vegetation",
                 "buildings_nearby", "safe_landing_no_sseg", "safe_landing_semantics", "normals_svd_marigold"):
        assert name in stored, name
    semantic = npz(tmp_path / "out", "semantic_output", 2)
    assert semantic.dtype == np.uint8 and set(np.unique(semantic)) <= set(range(8)) | {255}
    for name in ("buildings", "buildings_nearby", "safe_landing_semantics"):
        assert set(np.unique(npz(tmp_path / "out", name, 2))) <= {0, 1}
    near, buildings = npz(tmp_path / "out", "buildings_nearby", 1), npz(tmp_path / "out", "buildings", 1)
    assert not near[25:].any() and np.array_equal(near[:10], buildings[:10])  # depth <= 0.3 only in the top rows
