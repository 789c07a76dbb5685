"""What an adversary tried on the store and the CLI: two videos in one dataset, relabelling rebuilds, damaged
files, read-only datasets, full disks, bad arguments, leftovers of killed runs. Each test failed before its fix."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from conftest import make_video, remux
from test_run import do_run, metadata, npz, write_plane_depth

from vre_fast import StoreError
from vre_fast.cli import main
from vre_fast.store import RepresentationMetadata
from vre_fast.store.atomic import _HOST_TAG

RGB_HSV = {"rgb": {"type": "rgb"}, "hsv": {"type": "hsv"}}


def write_cfg(path: Path, reprs: dict, **top) -> Path:
    path.write_text(yaml.safe_dump({**top, "representations": reprs}))
    return path


def cli_run(video: Path, cfg: Path, out: Path, *extra: str) -> int:
    return main(["run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress", *extra])


def one_error_line(err: str) -> str:
    """The CLI's complaint: exactly one line, no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("vre-fast: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 2. one dataset, one video ----------------------------------------------------------------------------
def test_a_different_video_is_refused_naming_both_and_allowed_only_when_asked(video: Path, tmp_path: Path, capsys):
    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV), tmp_path / "out"
    other = make_video(tmp_path / "other.mp4", num_frames=24, height=40, width=56)
    assert cli_run(video, cfg, out) == 0
    capsys.readouterr()
    assert cli_run(other, cfg, out) == 1  # before: "Nothing to compute", exit 0
    line = one_error_line(capsys.readouterr().err)
    assert str(video.resolve()) in line and str(other.resolve()) in line and "--allow-other-source" in line
    assert "64x48" in line and "56x40" in line
    # the same frames in another container and path (re-encoding would not do: x264's output depends on the
    # container's time base and the machine's thread count, so the pixels differ)
    same_pixels = remux(video, tmp_path / "renamed.mkv")
    assert cli_run(same_pixels, cfg, out) == 0
    assert "Nothing to compute" in capsys.readouterr().err

    with_edges = write_cfg(tmp_path / "edges.yaml", {**RGB_HSV, "edges": {"type": "edges_canny"}})
    assert cli_run(other, with_edges, out, "--allow-other-source", "--frames", "0..2") == 0
    sources = json.loads((out / ".source.json").read_text())["sources"]
    assert [s["path"] for s in sources] == [str(video.resolve()), str(other.resolve())]
    assert {s["width"] for s in sources} == {64, 56} and all(len(s["fingerprint"]) == 64 for s in sources)
    records = [json.loads(p.read_text()) for p in sorted((out / ".logs").glob("run-*.json"))]
    assert {r["source"]["path"] for r in records} == {str(video.resolve()), str(other.resolve())}


def test_videos_that_open_alike_are_still_told_apart(tmp_path: Path):
    from vre_fast.sources.synthetic import write_video

    rng = np.random.default_rng(0)
    leader = [np.zeros((48, 64, 3), np.uint8)] * 3  # a black leader, as many real clips open
    first = write_video(tmp_path / "first.mp4", leader + list(rng.integers(0, 255, (21, 48, 64, 3), np.uint8)))
    second = write_video(tmp_path / "second.mp4", leader + list(rng.integers(0, 255, (21, 48, 64, 3), np.uint8)))
    out = tmp_path / "out"
    do_run(first, out, RGB_HSV, frames=(0, 3))
    with pytest.raises(StoreError, match="is a different video"):
        do_run(second, out, RGB_HSV, frames=(0, 3))


def test_yaml_merge_keys_still_load_and_may_be_overridden(video: Path, tmp_path: Path):
    from vre_fast import load_config

    cfg = tmp_path / "merge.yaml"
    cfg.write_text("representations:\n  a: {type: edges_canny, parameters: &canny {threshold1: 60, threshold2: 150}}\n"
                   "  b:\n    type: edges_canny\n    parameters:\n      <<: *canny\n      threshold1: 50\n")
    a, b = load_config(cfg).representations
    assert a.parameters == {"threshold1": 60, "threshold2": 150} and b.parameters == {"threshold1": 50, "threshold2": 150}


def test_a_dataset_of_an_older_version_adopts_the_video_it_is_run_with(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV, frames=(0, 4))
    (out / ".source.json").unlink()  # as written before source identities existed
    do_run(video, out, RGB_HSV, frames=(4, 8))
    assert json.loads((out / ".source.json").read_text())["sources"][0]["num_frames"] == 24


# -- 3. rebuild keeps the definition that produced the files --------------------------------------------
def test_metadata_rebuild_with_another_config_is_refused_unless_relabelling(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    edges = {"edges": {"type": "edges_canny", "parameters": {"threshold1": 60}}}
    do_run(video, out, edges)
    original = metadata(out, "edges")["definition"]
    changed = write_cfg(tmp_path / "changed.yaml", {"edges": {"type": "edges_canny", "parameters": {"threshold1": 10}}})
    assert main(["metadata", "rebuild", str(out), "--config", str(changed)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "parameters.threshold1: 60.0 on disk, 10.0 now" in line and "--relabel" in line
    assert metadata(out, "edges")["definition"] == original
    with pytest.raises(StoreError, match="different definition"):  # the next run still refuses the old files
        do_run(video, out, {"edges": {"type": "edges_canny", "parameters": {"threshold1": 10}}})
    assert main(["metadata", "rebuild", str(out)]) == 0
    assert "edges: 24 frames (definition: kept)" in capsys.readouterr().out
    assert main(["metadata", "rebuild", str(out), "--config", str(changed), "--relabel"]) == 0
    assert "(definition: relabelled)" in capsys.readouterr().out
    assert metadata(out, "edges")["definition"]["parameters"]["threshold1"] == 10


# -- 4. damaged stored files ----------------------------------------------------------------------------
def test_a_corrupt_stored_dependency_names_the_file_and_honours_on_error(video: Path, tmp_path: Path, capsys):
    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    out = tmp_path / "out"
    depth = {"depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}}}
    graph = {**depth, "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}}}
    do_run(video, out, depth)
    damaged = out / "depth" / "npz" / "5.npz"
    damaged.write_bytes(damaged.read_bytes()[:40])  # a torn zip: zipfile.BadZipFile before the fix
    cfg = write_cfg(tmp_path / "cfg.yaml", graph, batch_size=4)
    assert cli_run(video, cfg, out) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(damaged) in line and "metadata rebuild" in line
    assert sorted(metadata(out, "normals")["frames"]) == [0, 1, 2, 3]  # the batch before is kept

    assert cli_run(video, cfg, out, "--on-error", "skip") == 0
    assert list(metadata(out, "normals")["failed"]) == [5] and len(metadata(out, "normals")["frames"]) == 23
    assert list(metadata(out, "depth")["failed"]) == [5]  # so the next run recomputes the damaged file
    assert cli_run(video, cfg, out) == 0
    assert len(metadata(out, "normals")["frames"]) == 24 and npz(out, "depth", 5).shape == (48, 64)


def test_collage_of_a_corrupt_file_fails_cleanly_and_leaves_no_partial_video(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV)
    (out / "hsv" / "npz" / "20.npz").write_bytes(b"PK\x03\x04 not really")
    target = tmp_path / "collage.mp4"
    assert main(["collage", str(out), "-o", str(target)]) == 1
    assert "hsv/npz/20.npz" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "video.mp4"]  # neither the mp4 nor a temp
    assert main(["collage", str(out), "-o", str(target), "--on-error", "skip"]) == 0
    assert "frame 20 left out" in capsys.readouterr().err
    with av.open(str(target)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 23


# -- 5. a read-only dataset can be read -----------------------------------------------------------------
@contextmanager
def read_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every write under `root` fails with EROFS, as on a read-only mount (chmod does not stop root, which
    CI may be)."""
    root = str(root.resolve())

    def guard(path: object, writing: bool) -> None:
        if writing and os.path.abspath(os.fspath(path)).startswith(root):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_os_open = builtins.open, os.open

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            guard(file, any(c in mode for c in "wax+"))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        guard(path, bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        return real_os_open(path, flags, *args, **kwargs)

    def refuse(real):
        def wrapper(path, *args, **kwargs):
            guard(path, True)
            return real(path, *args, **kwargs)
        return wrapper

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", fake_open)
        m.setattr(io, "open", fake_open)
        m.setattr(os, "open", fake_os_open)
        for name in ("mkdir", "unlink", "remove", "rmdir", "replace", "rename"):
            m.setattr(os, name, refuse(getattr(os, name)))
        yield


def test_a_read_only_dataset_is_read_checked_and_drawn(video: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV)
    (out / "rgb" / ".metadata.lock").unlink()  # as copied onto a read-only medium without its lock files
    cfg = write_cfg(tmp_path / "cfg.yaml", RGB_HSV)
    with read_only(out, monkeypatch):
        assert sorted(RepresentationMetadata.read(out / "rgb").frames) == list(range(24))
        assert sorted(RepresentationMetadata.read(out / "hsv").frames) == list(range(24))
        assert cli_run(video, cfg, out) == 0
        assert "Nothing to compute" in capsys.readouterr().err
        assert main(["collage", str(out), "-o", str(tmp_path / "c.mp4")]) == 0
        capsys.readouterr()
        # work to do on a read-only output: one clear line
        assert cli_run(video, write_cfg(tmp_path / "more.yaml", {**RGB_HSV, "e": {"type": "edges_canny"}}), out) == 1
        line = one_error_line(capsys.readouterr().err)
        assert "Read-only file system" in line and "must be writable" in line
    assert (tmp_path / "c.mp4").stat().st_size > 0


# -- 6. user-facing conditions get one line, not a traceback --------------------------------------------
def test_a_full_disk_stops_with_one_line_and_keeps_every_finished_frame(video: Path, tmp_path: Path, monkeypatch,
                                                                        capsys):
    from vre_fast.store import frames as frames_module

    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV, batch_size=2), tmp_path / "out"
    real_write, calls = frames_module.atomic_write, []

    def filling_disk(path: Path, parts, durable: bool, direct: bool) -> None:
        calls.append(path)
        if len(calls) > 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, parts, durable, direct)

    monkeypatch.setattr(frames_module, "atomic_write", filling_disk)
    assert cli_run(video, cfg, out, "--write-workers", "1") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "finished frames are kept" in line
    kept = {name: set(metadata(out, name)["frames"]) for name in RGB_HSV}
    assert sum(map(len, kept.values())) == 20  # every file that was written is recorded
    for name, frames in kept.items():
        for f in frames:
            npz(out, name, f)
    record = json.loads(next((out / ".logs").glob("run-*.json")).read_text())
    assert record["status"] == "failed" and "No space left" in record["error"]
    monkeypatch.setattr(frames_module, "atomic_write", real_write)
    assert cli_run(video, cfg, out) == 0
    assert all(len(metadata(out, name)["frames"]) == 24 for name in RGB_HSV)


def test_a_full_disk_while_folding_metadata_loses_no_frame(video: Path, tmp_path: Path, monkeypatch, capsys):
    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV), tmp_path / "out"
    assert cli_run(video, cfg, out, "--frames", "0..5") == 0

    def no_space(self, state) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.directory / ".metadata.json"))

    monkeypatch.setattr(RepresentationMetadata, "_write_json", no_space)
    assert cli_run(video, cfg, out, "--frames", "5..12") == 1
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert all(sorted(metadata(out, name)["frames"]) == list(range(12)) for name in RGB_HSV)  # from the journals
    assert cli_run(video, cfg, out, "--frames", "0..12") == 0
    assert "Nothing to compute" in capsys.readouterr().err


def test_bad_arguments_and_files_get_one_line(video: Path, tmp_path: Path, capsys):
    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV), tmp_path / "out"
    (tmp_path / "a_file").write_text("x")
    assert cli_run(video, cfg, tmp_path / "a_file") == 1
    assert "a_file: it is a file; the output must be a directory" in one_error_line(capsys.readouterr().err)
    assert cli_run(video, cfg, tmp_path / "a_file" / "sub") == 1  # a file on the way
    assert f"a_file/sub: {tmp_path / 'a_file'} is a file" in one_error_line(capsys.readouterr().err)
    assert cli_run(video, tmp_path, out) == 1
    assert f"--config {tmp_path} is a directory" in one_error_line(capsys.readouterr().err)
    (tmp_path / "latin1.yaml").write_bytes("representations: {caf\xe9: {type: rgb}}".encode("latin-1"))
    assert cli_run(video, tmp_path / "latin1.yaml", out) == 1
    assert "is not UTF-8 text (byte 0xe9" in one_error_line(capsys.readouterr().err)
    (tmp_path / "dup.yaml").write_text("representations:\n  a: {type: rgb}\n  a: {type: hsv}\n")
    assert cli_run(video, tmp_path / "dup.yaml", out) == 1
    assert "dup.yaml:3:3: not valid YAML" in one_error_line(capsys.readouterr().err)
    assert not out.exists()

    for extra, message in ((["--write-workers", "0"], "--write-workers: expected a positive integer, got '0'"),
                           (["--frames", "5..5"], "--frames: --frames '5..5' is an empty or negative range")):
        with pytest.raises(SystemExit) as exit_:
            cli_run(video, cfg, out, *extra)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    for argv, message in ((["run", str(video), "-c", str(cfg), "-o", ""], "--output/-o: an empty path"),
                          (["collage", str(out), "-o", "c.mp4", "--fps", "nan"], "--fps: expected a positive number"),
                          (["collage", str(out), "-o", "c.mp4", "--fps", "0"], "--fps: expected a positive number"),
                          (["collage", str(out), "-o", "c.mp4", "--tile", "100000x100000"], "a tile is at most"),
                          (["stream", "-c", str(cfg), "--source", "stdin", "--fps", "0"], "--fps: expected a")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err, argv
    for port in ("99999", "abc"):
        assert main(["stream", "-c", str(cfg), "--source", f"vre-tcp://127.0.0.1:{port}", "--sink", "null",
                     "--quiet"]) == 1
        assert "--source vre-tcp://127.0.0.1:" in one_error_line(capsys.readouterr().err)

    assert cli_run(video, cfg, out, "--frames", "0..2") == 0
    (out / "hsv" / ".metadata.json").write_text("[]")
    capsys.readouterr()
    assert cli_run(video, cfg, out) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "hsv/.metadata.json is not valid vre-fast metadata (a JSON list, not an object)" in line
    assert "metadata rebuild" in line


@pytest.mark.parametrize("damage", ['{"frames": []}', '{"frames": {"3": {"time": 1}}}', '{"frames": {"3": "x"}}',
                                    '{"frames": {"abc": {"time": 1, "formats": ["npz"]}}}',
                                    '{"frames": {"3": {"time": 1, "formats": null}}}'])
def test_metadata_entries_of_the_wrong_shape_are_one_line(video: Path, tmp_path: Path, capsys, damage: str):
    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV), tmp_path / "out"
    assert cli_run(video, cfg, out, "--frames", "0..2") == 0
    state = json.loads((out / "hsv" / ".metadata.json").read_text())
    (out / "hsv" / ".metadata.json").write_text(json.dumps({**state, **json.loads(damage)}))
    capsys.readouterr()
    for argv in (["run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress"],
                 ["collage", str(out), "-o", str(tmp_path / "c.mp4")]):
        assert main(argv) == 1
        assert "is not valid vre-fast metadata" in one_error_line(capsys.readouterr().err)


def test_malformed_journal_lines_are_ignored_with_a_warning(video: Path, tmp_path: Path, capsys):
    cfg, out = write_cfg(tmp_path / "cfg.yaml", RGB_HSV), tmp_path / "out"
    assert cli_run(video, cfg, out, "--frames", "0..2") == 0
    journal = out / "hsv" / ".metadata.journal" / "dead.jsonl"
    journal.write_text("123\nnull\n" + "\n".join(json.dumps(line) for line in (
        {"time": 1}, {"frame": "five", "time": 1, "formats": ["npz"]}, {"frame": 4, "formats": ["npz"]},
        {"frame": 5, "time": 1.0, "formats": ["npz"], "run_id": "x"})) + "\n")
    capsys.readouterr()
    assert sorted(metadata(out, "hsv")["frames"]) == [0, 1, 5]  # the one well-formed line counts
    assert cli_run(video, cfg, out, "--frames", "0..3") == 0
    assert "5 malformed line(s) ignored" in capsys.readouterr().err


# -- 7. leftovers -----------------------------------------------------------------------------------------
def test_temporaries_of_dead_writers_go_on_any_open_even_of_a_finished_dataset(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV)
    dead = 4194305  # above Linux's pid_max: never alive
    stale = [out / "rgb" / "npz" / f".3.npz.{dead}-1-{_HOST_TAG}.tmp",
             out / "hsv" / f"..metadata.json.{dead}-7-{_HOST_TAG}.tmp",
             out / ".logs" / f".run-x.json.{dead}-2-{_HOST_TAG}.tmp",
             out / "rgb" / "npz" / f".9.npz.{dead}-1.tmp",  # the older naming, without a host tag
             out / "rgb" / "npz" / ".4.npz.1-1-0000ffff.tmp"]  # another host's, an hour old
    kept = [out / "rgb" / "npz" / f".5.npz.{os.getpid()}-1-{_HOST_TAG}.tmp",  # a live writer's
            out / "rgb" / "npz" / f".6.npz.{dead}-1-0000ffff.tmp"]  # another host's, fresh: it may be alive
    for path in stale + kept:
        path.write_bytes(b"partial")
    os.utime(stale[-1], (time.time() - 7200, time.time() - 7200))
    result = do_run(video, out, RGB_HSV)
    assert result.computed_frames == 0  # nothing to compute, yet swept
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_the_sweep_deletes_no_old_hidden_tmp_file_that_vre_fast_did_not_name(video: Path, tmp_path: Path):
    """-o a folder of the user's (the home directory, say): an old `.draft.tmp` of theirs is no writer's leftover."""
    theirs = [tmp_path / ".draft.tmp", tmp_path / ".editor.swap.tmp"]
    for path in theirs:
        path.write_bytes(b"someone's")
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    do_run(video, tmp_path, RGB_HSV, frames=(0, 1))
    assert all(p.exists() for p in theirs)


def test_collage_to_a_folder_replaces_only_when_complete(video: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV, frames=(0, 3))
    pictures = out / "pictures"  # inside the dataset: not taken for a representation afterwards
    (pictures).mkdir()
    (pictures / "7.png").write_bytes(b"a stale frame of an earlier collage")
    (pictures / "notes.png").write_bytes(b"not a frame: kept")
    assert main(["collage", str(out), "-o", str(pictures)]) == 0
    assert sorted(p.name for p in pictures.iterdir()) == ["0.png", "1.png", "2.png", "notes.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert main(["collage", str(out), "-o", str(tmp_path / "again.mp4")]) == 0  # pictures/ is no representation
    capsys.readouterr()
    assert main(["metadata", "rebuild", str(out)]) == 0
    assert "pictures" not in capsys.readouterr().out
    for target, message in (("x.gif", ".gif is not a video format"), (str(pictures) + ".mp4", None)):
        if message is None:
            (tmp_path / "dir.mp4").mkdir()
            target, message = str(tmp_path / "dir.mp4"), "is a folder; give a video file name"
        assert main(["collage", str(out), "-o", target]) == 1
        assert message in one_error_line(capsys.readouterr().err)


def test_a_collage_temp_folder_left_by_a_kill_does_not_break_later_runs(video: Path, tmp_path: Path):
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV, frames=(0, 2))
    left = out / ".collage.99999.tmp"
    left.mkdir()
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    do_run(video, out, RGB_HSV, frames=(0, 3))  # before: "Is a directory" from the sweep
    assert left.is_dir()


def test_stdin_size_beyond_the_frame_limit_is_refused_before_reading(tmp_path: Path, capsys):
    cfg = write_cfg(tmp_path / "cfg.yaml", RGB_HSV)
    assert main(["stream", "-c", str(cfg), "--source", "stdin", "--size", "100000x100000", "--sink", "null",
                 "--quiet"]) == 1
    assert "--size 100000x100000 is larger than --max-frame-size 7680x4320" in one_error_line(capsys.readouterr().err)


def test_run_options_and_source_records_of_the_wrong_shape_are_refused(video: Path, tmp_path: Path):
    from vre_fast import RunOptions

    for bad in ({"write_workers": 0}, {"on_error": "bogus"}, {"durability": "bogus"}):
        with pytest.raises(ValueError, match="must be"):
            RunOptions(**bad)
    out = tmp_path / "out"
    do_run(video, out, RGB_HSV, frames=(0, 1))
    record = json.loads((out / ".source.json").read_text())
    record["sources"][0]["fingerprint"] = None
    (out / ".source.json").write_text(json.dumps(record))
    with pytest.raises(StoreError, match=r"\.source\.json is unreadable \(TypeError: field\(s\) \['fingerprint'\]"):
        do_run(video, out, RGB_HSV, frames=(0, 1))
