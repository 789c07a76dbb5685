"""VRE users' habits: plugins (--plugin / plugins:), --representations, --frames lists, --exists, --collage, and
folders of frames (png / jpg / npy / npz) as a source."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from conftest import frames_of

from vre_fast import RunOptions, VideoError, parse_config, run
from vre_fast.cli import main
from vre_fast.frame_range import parse_frame_list
from vre_fast.sources import ImageFolderSource, VideoSource
from vre_fast.sources.images import natural_key

PLUGIN = '''\
"""A user's plugin: two types, the second reading the first."""
from dataclasses import dataclass

import numpy as np

from vre_fast import ComputeBatch, Input, Representation, register_representation


@dataclass(frozen=True)
class Params:
    offset: int = 0


@register_representation("{invert}")
class Invert(Representation):
    Params = Params
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return 255 - batch.frames + np.uint8(self.params.offset)

    def make_image(self, decoded):
        return decoded


@register_representation("{gray}")
class Gray(Representation):
    inputs = (Input("src"),)
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.inputs["src"].mean(axis=-1).astype(np.uint8)
'''


def write_plugin(folder: Path, tag: str) -> tuple[Path, str, str]:
    invert, gray = f"test_invert_{tag}", f"test_gray_{tag}"
    path = folder / "my_types.py"
    path.write_text(PLUGIN.format(invert=invert, gray=gray))
    return path, invert, gray


def stored(out: Path, name: str, frame: int) -> np.ndarray:
    with np.load(out / name / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


def write_cfg(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


# -- plugins ------------------------------------------------------------------------------------------------------

def test_a_plugin_type_runs_end_to_end_and_its_dataset_collages_with_plugin(video: Path, tmp_path: Path, registry,
                                                                           capsys):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    plugin, invert, gray = write_plugin(plugin_dir, "e2e")
    cfg = write_cfg(plugin_dir / "cfg.yaml", {"plugins": ["my_types.py"],  # relative to the config file
                                              "representations": {"inv": {"type": invert, "parameters": {"offset": 1}},
                                                                  "gray": {"type": gray, "dependencies": ["inv"]}}})
    out = tmp_path / "out"
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "0..4", "--no-progress",
                 "--collage"]) == 0
    frames = frames_of(video)
    for f in range(4):
        np.testing.assert_array_equal(stored(out, "inv", f), 255 - frames[f] + np.uint8(1))
        np.testing.assert_array_equal(stored(out, "gray", f), (255 - frames[f] + np.uint8(1)).mean(-1).astype(np.uint8))
    with av.open(str(out / "collage.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 4
    assert "collage: 4 frames written" in capsys.readouterr().err

    registry()  # a new process: the plugin's types are unknown again
    assert main(["collage", str(out), "-o", str(tmp_path / "c.mp4")]) == 1
    err = capsys.readouterr().err
    assert f"unknown representation type '{gray}'" in err and "--plugin" in err and "Traceback" not in err
    assert main(["collage", str(out), "-o", str(tmp_path / "c.mp4"), "--plugin", str(plugin)]) == 0
    assert main(["info", str(out), "--plugin", str(plugin), "--plugin", str(plugin)]) == 0  # named twice: loaded once
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert invert in capsys.readouterr().out.split()


BROKEN = {
    "syntax": ("x = 1\ndef broken(:\n", r":2: syntax error"),
    "import": ("import os\nimport not_a_module_for_vre_fast_tests\n", r":2: an import failed: No module named"),
    "raises": ("x = 1\n\nraise RuntimeError('boom')\n", r":3: failed while loading: RuntimeError: boom"),
    "clash": ("from vre_fast import register_representation\nfrom vre_fast.representations.rgb import RGB\n\n"
              "register_representation('test_first_ok')(RGB)\nregister_representation('rgb')(RGB)\n",
              r":5: type 'rgb' is already registered \(by vre_fast.representations.rgb\)"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_plugin_is_one_error_naming_file_and_line(kind: str, tmp_path: Path, registry, capsys):
    source, expected = BROKEN[kind]
    plugin = tmp_path / f"bad_{kind}.py"
    plugin.write_text(source)
    assert main(["list", "--plugin", str(plugin)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vre-fast: error: plugin {plugin}") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(expected, err), err
    from vre_fast import list_representations

    assert "test_first_ok" not in list_representations()  # what it registered before failing is taken out


def test_missing_plugin_and_bad_plugins_key(video: Path, tmp_path: Path, registry, capsys):
    assert main(["list", "--plugin", str(tmp_path / "nope.py")]) == 1
    assert f"plugin {tmp_path / 'nope.py'}: no such file" in capsys.readouterr().err
    (tmp_path / "vre_style.py").write_text("def get_representations(): return {}\n")
    assert main(["list", "--plugin", f"{tmp_path / 'vre_style.py'}:get_representations"]) == 1
    assert f"give the file alone ({tmp_path / 'vre_style.py'})" in capsys.readouterr().err
    cfg = write_cfg(tmp_path / "cfg.yaml", {"plugins": "x.py", "representations": {"rgb": {"type": "rgb"}}})
    assert main(["run", str(video), "-c", str(cfg), "-o", str(tmp_path / "out")]) == 1
    assert "vre-fast: error: plugins: expected a list of Python files" in capsys.readouterr().err


# -- --representations --------------------------------------------------------------------------------------------

def edges_mask_cfg(**edges: object) -> dict:
    return {"representations": {"rgb": {"type": "rgb"},
                                "edges": {"type": "edges_canny", **edges},
                                "mask": {"type": "threshold", "dependencies": ["edges"],
                                         "parameters": {"value": 1, "keep": "above"}}}}


def test_representations_stores_only_those_listed(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    result = run(video, parse_config(edges_mask_cfg()), out, RunOptions(frames=(0, 3), representations=("mask",)))
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["mask"]  # edges: computed only
    assert [b.name for b in result.bindings] == ["edges", "mask"]  # rgb is no part of it
    assert result.record.frames_done == 3
    # stored later, then read back for the mask instead of being recomputed; its files are not written again
    run(video, parse_config(edges_mask_cfg()), out, RunOptions(frames=(0, 5), representations=("edges",)))
    edges_meta = json.loads((out / "edges" / ".metadata.json").read_bytes())
    result = run(video, parse_config(edges_mask_cfg()), out, RunOptions(frames=(0, 6), representations=("mask",)))
    stats = {b.name: b.stats for b in result.bindings}
    assert (stats["edges"].loaded, stats["edges"].computed, stats["mask"].computed) == (2, 1, 3)
    assert json.loads((out / "edges" / ".metadata.json").read_bytes()) == edges_meta
    assert not (out / "edges" / "npz" / "5.npz").exists()
    for f in range(6):
        np.testing.assert_array_equal(stored(out, "mask", f), (stored(out, "edges", f) if f < 5 else
                                                                run_edges(video, f)) >= 1)

    cfg = write_cfg(tmp_path / "cfg.yaml", edges_mask_cfg())
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--representations", "rgb", "mask,edges",
                 "--frames", "0..2", "--no-progress"]) == 0
    assert (out / "rgb" / "npz" / "1.npz").exists()
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--representations", "rgb, mask",
                 "--frames", "0..2", "--no-progress"]) == 0  # "a, b" as a person types it
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--representations", "nope"]) == 1
    assert "--representations: no 'nope' in the config; it defines edges, mask, rgb" in capsys.readouterr().err
    cfg = write_cfg(tmp_path / "cfg2.yaml", edges_mask_cfg(output_formats=[]))
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--representations", "edges"]) == 1
    assert "'edges' stores nothing (output_formats: [])" in capsys.readouterr().err


def run_edges(video: Path, frame: int) -> np.ndarray:
    return cv2.Canny(frames_of(video)[frame], 100, 200) // 255  # edges_canny's defaults, stored as {0, 1}


# -- --frames lists -----------------------------------------------------------------------------------------------

def test_parse_frame_list():
    assert parse_frame_list(["22", "5", "8", "5"]) == (5, 8, 22)
    assert parse_frame_list(["0..3", "10"]) == (0, 1, 2, 10)
    with pytest.raises(ValueError, match="open range"):
        parse_frame_list(["5..", "8"])
    with pytest.raises(ValueError, match="expects"):
        parse_frame_list(["5", "x"])
    for negative in (["-1"], ["5", "-2"], ["..-3"]):  # refused by the parser, before a run is recorded
        with pytest.raises(ValueError, match="empty or negative"):
            parse_frame_list(negative)


def test_a_negative_frame_is_one_error_line(video: Path, tmp_path: Path, capsys):
    cfg = write_cfg(tmp_path / "cfg.yaml", {"representations": {"rgb": {"type": "rgb"}}})
    for frames in (["-1"], ["5", "-2"]):
        with pytest.raises(SystemExit):
            main(["run", str(video), "-c", str(cfg), "-o", str(tmp_path / "out"), "--frames", *frames])
        assert "--frames" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_frame_list_runs_batched_with_the_next_frame_and_resumes(video: Path, tmp_path: Path, capsys):
    body = {"batch_size": 2, "representations": {"rgb": {"type": "rgb"}, "flow": {"type": "optical_flow_classical"}}}
    cfg = write_cfg(tmp_path / "cfg.yaml", body)
    ref, out = tmp_path / "ref", tmp_path / "out"
    run(video, parse_config(body), ref, RunOptions())
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "3", "7", "8", "23", "0..2",
                 "--no-progress"]) == 0
    wanted = [0, 1, 3, 7, 8, 23]
    assert sorted(int(p.stem) for p in (out / "flow" / "npz").iterdir()) == wanted
    for f in wanted:  # flow of the last frame is zero; the others read frame f + 1 (never asked for) exactly
        np.testing.assert_array_equal(stored(out, "rgb", f), stored(ref, "rgb", f))
        np.testing.assert_array_equal(stored(out, "flow", f), stored(ref, "flow", f))
    record = json.loads(next((out / ".logs").glob("run-*.json")).read_bytes())
    assert record["frame_list"] == wanted and record["frames_requested"] == [0, 24]
    capsys.readouterr()

    result = run(video, parse_config(body), out, RunOptions(frame_list=(3, 7, 9)))
    assert result.computed_frames == 1 and result.already_done == {"rgb": 2, "flow": 2}
    assert "Nothing to compute: frames 3 7 9 of all 2" in run(video, parse_config(body), out,
                                                              RunOptions(frame_list=(3, 7, 9))).report()
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "3", "24"]) == 1
    assert "--frames 24 is past the end (it has 24 frames: 0..23)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "3..", "5"])
    assert "open range" in capsys.readouterr().err


# -- --exists -----------------------------------------------------------------------------------------------------

def test_exists_raise_and_overwrite(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    cfg = write_cfg(tmp_path / "cfg.yaml", edges_mask_cfg())
    base = ["run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress"]
    assert main([*base, "--frames", "0..4"]) == 0
    assert main([*base, "--frames", "4..6", "--exists", "raise"]) == 1
    assert "--exists raise: " in capsys.readouterr().err and not (out / "rgb" / "npz" / "4.npz").exists()
    assert main(["run", str(video), "-c", str(cfg), "-o", str(tmp_path / "fresh"), "--frames", "0..1",
                 "--exists", "raise", "--no-progress"]) == 0

    # other parameters: skip refuses the changed definition, overwrite deletes edges' frames (and only edges')
    (out / "edges" / "notes.txt").write_text("mine")
    cfg2 = write_cfg(tmp_path / "cfg2.yaml", edges_mask_cfg(parameters={"threshold1": 10, "threshold2": 20}))
    base2 = ["run", str(video), "-c", str(cfg2), "-o", str(out), "--no-progress", "--frames", "0..2"]
    assert main([*base2, "--representations", "edges"]) == 1
    assert "definition" in capsys.readouterr().err
    rgb_before = (out / "rgb" / "npz" / "3.npz").read_bytes()
    assert main([*base2, "--representations", "edges", "--exists", "overwrite"]) == 0
    assert sorted(p.name for p in (out / "edges" / "npz").iterdir()) == ["0.npz", "1.npz"]  # 2 and 3 are gone
    assert (out / "edges" / "notes.txt").read_text() == "mine" and "kept notes.txt" in capsys.readouterr().err
    assert (out / "rgb" / "npz" / "3.npz").read_bytes() == rgb_before  # not listed: untouched
    frame = frames_of(video)[1]
    np.testing.assert_array_equal(stored(out, "edges", 1), cv2.Canny(frame, 10, 20) // 255)
    # a refusal comes before anything is deleted: here the stored edges (a dependency) no longer match cfg's
    assert main([*base, "--representations", "mask", "--exists", "overwrite"]) == 1
    assert "definition" in capsys.readouterr().err and (out / "mask" / "npz" / "3.npz").exists()


def test_overwrite_refuses_what_is_not_a_representation_or_is_being_written(video: Path, tmp_path: Path, capsys):
    cfg = write_cfg(tmp_path / "cfg.yaml", {"representations": {"rgb": {"type": "rgb"}}})
    overwrite = ["--frames", "0..1", "--no-progress", "--exists", "overwrite"]
    mine = tmp_path / "mine"  # not an output directory at all
    (mine / "rgb").mkdir(parents=True)
    (mine / "rgb" / ".metadata.json").write_text("{}")
    (mine / "rgb" / "thesis.tex").write_text("keep me")
    assert main(["run", str(video), "-c", str(cfg), "-o", str(mine), *overwrite]) == 1
    assert "is not a vre-fast or VRE output directory" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), "--frames", "0..1", "--no-progress"]) == 0
    (out / "rgb" / ".metadata.json").unlink()
    (out / "rgb" / "thesis.tex").write_text("keep me")  # a folder without metadata, holding someone's files
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), *overwrite]) == 1
    assert "holds no vre-fast or VRE metadata" in capsys.readouterr().err
    assert (out / "rgb" / "npz" / "0.npz").exists()
    (out / "rgb" / "thesis.tex").unlink()
    (out / "rgb" / "png").mkdir()
    (out / "rgb" / "png" / "holiday.png").write_text("keep me")  # not a frame: without metadata, not ours either
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), *overwrite]) == 1
    assert "metadata and png/holiday.png (not a frame file)" in capsys.readouterr().err
    assert (out / "rgb" / "png" / "holiday.png").exists()
    (out / "rgb" / "png" / "holiday.png").unlink()
    (out / "rgb" / ".metadata.journal").mkdir(exist_ok=True)
    with open(out / "rgb" / ".metadata.journal" / "live.jsonl", "ab") as journal:  # another run, still writing
        fcntl.flock(journal.fileno(), fcntl.LOCK_EX)
        assert main(["run", str(video), "-c", str(cfg), "-o", str(out), *overwrite]) == 1
        assert "a run is writing it now (journal live.jsonl)" in capsys.readouterr().err
    assert main(["run", str(video), "-c", str(cfg), "-o", str(out), *overwrite]) == 0
    assert "deleted" in capsys.readouterr().err


def test_overwrite_killed_half_way_leaves_no_frame_counted_done_without_its_files(video: Path, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch):
    import shutil

    from vre_fast.store import RepresentationMetadata
    from vre_fast.store.clear import clear_representation

    out = tmp_path / "out"
    run(video, parse_config({"representations": {"rgb": {"type": "rgb"}}}), out, RunOptions(frames=(0, 2)))
    journal = out / "rgb" / ".metadata.journal" / "killed-run.jsonl"  # what a killed run leaves
    journal.write_text(json.dumps({"frame": 2, "run_id": "killed-run", "duration": 0.1, "formats": ["npz"],
                                   "time": 1e10}) + "\n")
    (out / "rgb" / "npz" / "2.npz").write_bytes((out / "rgb" / "npz" / "1.npz").read_bytes())
    real_rmtree = shutil.rmtree

    def killed_after_the_frames(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if Path(path).name == "npz":
            real_rmtree(path, *args, **kwargs)
            raise KeyboardInterrupt
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_after_the_frames)
    with pytest.raises(KeyboardInterrupt):
        clear_representation(out, "rgb")
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert not (out / "rgb" / "npz").exists()
    again = run(video, parse_config({"representations": {"rgb": {"type": "rgb"}}}), out, RunOptions(frames=(0, 3)))
    assert again.computed_frames == 3 and (out / "rgb" / "npz" / "2.npz").exists()  # none counted done
    assert sorted(RepresentationMetadata.read(out / "rgb").frames) == [0, 1, 2]


# -- folders of frames ---------------------------------------------------------------------------------------------

def test_natural_order():
    names = ["frame_10.png", "frame_2.png", "frame_1.png", "a.png", "frame_01.png"]
    assert sorted(names, key=natural_key) == ["a.png", "frame_01.png", "frame_1.png", "frame_2.png", "frame_10.png"]
    assert sorted(["1²2.png", "1.png"], key=natural_key) == ["1.png", "1²2.png"]  # '²' is a digit, not a number


def test_a_stored_file_named_with_a_non_ascii_digit_is_no_frame(tmp_path: Path):
    from vre_fast.store import FrameFiles

    (tmp_path / "npz").mkdir()
    for name in ("3.npz", "².npz", "٣.npz"):  # int() refuses the first, reads the second as 3
        (tmp_path / "npz" / name).write_bytes(b"")
    assert FrameFiles(tmp_path).frames_on_disk("npz") == {3: tmp_path / "npz" / "3.npz"}


def write_folder(folder: Path, frames: list[np.ndarray], fmt: str, names: str = "frame_{}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        path = folder / f"{names.format(i)}.{fmt}"
        if fmt == "npy":
            np.save(path, frame)
        elif fmt == "npz":
            np.savez(path, frame)
        else:
            cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


@pytest.mark.parametrize("fmt", ["png", "npy", "npz", "jpg"])
def test_a_folder_reads_its_frames_in_natural_order_by_exact_index(fmt: str, video: Path, tmp_path: Path):
    frames = frames_of(video)
    folder = write_folder(tmp_path / fmt, frames, fmt)
    with ImageFolderSource(folder) as source:
        assert (source.num_frames, source.height, source.width, source.fps) == (24, 48, 64, 1)
        assert [p.name for p in source.files[:3]] == [f"frame_0.{fmt}", f"frame_1.{fmt}", f"frame_2.{fmt}"]
        got = dict(source.read([10, 2, 3]))
        assert list(got) == [2, 3, 10]
        for i, frame in got.items():
            if fmt == "jpg":  # lossy: what OpenCV decodes, in RGB order
                np.testing.assert_array_equal(frame, cv2.imread(str(source.files[i]))[..., ::-1])
            else:
                np.testing.assert_array_equal(frame, frames[i])
        if fmt != "jpg":  # the video's pixels, losslessly: the video's identity
            with VideoSource(video) as original:
                assert source.fingerprint() == original.fingerprint()
    assert ImageFolderSource(folder, fps=7.5).fps == 7.5


def test_bad_folders_are_one_error_naming_the_file(video: Path, tmp_path: Path):
    frames = frames_of(video)[:4]
    folder = write_folder(tmp_path / "mixed_sizes", frames, "png")
    cv2.imwrite(str(folder / "frame_2.png"), np.zeros((10, 20, 3), np.uint8))
    with ImageFolderSource(folder) as source, pytest.raises(VideoError, match=r"frame_2.png: frame 2 is 20x10, the "
                                                                              r"folder's frames are 64x48"):
        list(source.read(range(4)))
    folder = write_folder(tmp_path / "unreadable", frames, "png")
    (folder / "frame_3.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(VideoError, match=r"frame_3.png: not a readable picture"):
        list(ImageFolderSource(folder).read([3]))
    folder = write_folder(tmp_path / "dtype", frames, "npy")
    np.save(folder / "frame_1.npy", frames[1].astype(np.float32))
    with pytest.raises(VideoError, match=r"frame_1.npy: a float32 array of shape \(48, 64, 3\)"):
        list(ImageFolderSource(folder).read([1]))
    (folder / "notes.txt").write_text("")
    with pytest.raises(VideoError, match="notes.txt is not a frame"):
        ImageFolderSource(folder)
    (folder / "notes.txt").unlink()
    write_folder(folder, frames[:1], "png")
    with pytest.raises(VideoError, match=r"holds both pictures \(frame_0.png\) and arrays"):
        ImageFolderSource(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frames in it"):
        ImageFolderSource(tmp_path / "empty")


def test_run_on_a_folder_of_frames(video: Path, tmp_path: Path, capsys):
    frames = frames_of(video)[:6]
    folder = write_folder(tmp_path / "frames", frames, "png", names="{}")
    cfg = write_cfg(tmp_path / "cfg.yaml", {"representations": {"rgb": {"type": "rgb"}, "edges": {"type": "edges_canny"}}})
    out = tmp_path / "out"
    base = ["run", str(folder), "-c", str(cfg), "-o", str(out), "--no-progress"]
    assert main([*base, "--fps", "5", "--frames", "1", "4"]) == 0
    np.testing.assert_array_equal(stored(out, "rgb", 4), frames[4])
    source = json.loads((out / ".source.json").read_bytes())["sources"][0]
    assert (source["path"], source["num_frames"], source["fps"], source["width"]) == (str(folder.resolve()), 6, "5", 64)
    assert source["size_bytes"] == sum(p.stat().st_size for p in folder.iterdir())
    capsys.readouterr()
    assert main([*base, "--fps", "5", "--frames", "1", "4"]) == 0
    assert "Nothing to compute" in capsys.readouterr().err
    assert main([*base, "--fps", "5"]) == 0 and sorted(int(p.stem) for p in (out / "rgb" / "npz").iterdir()) == [
        0, 1, 2, 3, 4, 5]
    other = write_folder(tmp_path / "other", frames[::-1], "png")
    assert main(["run", str(other), "-c", str(cfg), "-o", str(out), "--no-progress"]) == 1
    assert "is a different video" in capsys.readouterr().err
    assert main(["run", str(video), "-c", str(cfg), "-o", str(tmp_path / "v"), "--fps", "5"]) == 1
    assert "--fps is for a folder of frames" in capsys.readouterr().err


def test_stream_from_a_folder_of_frames(video: Path, tmp_path: Path):
    folder = write_folder(tmp_path / "frames", frames_of(video)[:5], "npy")
    cfg = write_cfg(tmp_path / "cfg.yaml", {"representations": {"rgb": {"type": "rgb"}}})
    stats, sink = tmp_path / "stats.json", tmp_path / "rgb.mp4"
    assert main(["stream", "-c", str(cfg), "--source", str(folder), "--sink", str(sink), "--policy", "all",
                 "--pace", "--fps", "50", "--stats-json", str(stats), "--quiet"]) == 0
    assert json.loads(stats.read_bytes())["processed"] == 5
    with av.open(str(sink)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5
