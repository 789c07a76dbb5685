"""The hand-packed npz writer against np.savez / np.load (the reference), and the durability choice."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vre_fast import ConfigError, parse_config
from vre_fast.store import FrameFiles
from vre_fast.store.npz import npy_parts, npz_parts

ARRAYS = {
    "float16 hsv": np.random.default_rng(0).random((48, 64, 3)).astype(np.float16),
    "uint8 rgb": np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8),
    "float32 depth": np.random.default_rng(2).random((5, 7), dtype=np.float32),
    "bool mask": np.random.default_rng(3).random((9, 4)) > 0.5,
    "non-contiguous": np.arange(200, dtype=np.int64).reshape(10, 20)[:, ::3],
    "big-endian": np.arange(12, dtype=">f4").reshape(3, 4),
    "empty": np.zeros((0, 3), np.float32),
}


@pytest.mark.parametrize("level", [None, 1, 6, 9])
@pytest.mark.parametrize("name", list(ARRAYS))
def test_np_load_reads_what_it_writes(tmp_path: Path, name: str, level: int | None):
    array = ARRAYS[name]
    path = tmp_path / "x.npz"
    path.write_bytes(b"".join(bytes(p) for p in npz_parts(array, level)))
    with np.load(path, allow_pickle=False) as data:
        assert list(data) == ["arr_0"]
        back = data["arr_0"]
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every CRC checks
        info = z.getinfo("arr_0.npy")
        assert info.compress_type == (zipfile.ZIP_STORED if level is None else zipfile.ZIP_DEFLATED)
        with np.load(path) as data, z.open(info) as member:  # the member is the .npy np.save would write
            assert member.read()[:6] == b"\x93NUMPY" and np.array_equal(data["arr_0"], array)


@pytest.mark.parametrize("name", list(ARRAYS))
def test_npy_is_what_np_save_writes(tmp_path: Path, name: str):
    array = ARRAYS[name]
    np.save(tmp_path / "reference.npy", array)
    (tmp_path / "ours.npy").write_bytes(b"".join(bytes(p) for p in npy_parts(array)))
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "reference.npy").read_bytes()


def test_same_array_same_bytes_and_compression_shrinks(tmp_path: Path):
    smooth = np.tile(np.linspace(0, 1, 640, dtype=np.float32), (480, 1)).astype(np.float16)
    sizes = {}
    for level in (None, 1, 6):
        first = b"".join(bytes(p) for p in npz_parts(smooth, level))
        assert first == b"".join(bytes(p) for p in npz_parts(smooth.copy(), level))  # no timestamp inside
        sizes[level] = len(first)
    assert sizes[6] <= sizes[1] < sizes[None] / 2


def test_durability_power_fsyncs_each_file_and_kill_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    picture = np.zeros((4, 4, 3), np.uint8)
    FrameFiles(tmp_path / "a", durable=False).make_dirs(("npz", "png"))
    FrameFiles(tmp_path / "a", durable=False).write(0, picture, ("npz",), {"png": picture})
    assert calls == []
    FrameFiles(tmp_path / "a", durable=True).write(1, picture, ("npz",), {"png": picture})
    assert len(calls) == 4  # each of the two files, then its directory
    with np.load(tmp_path / "a" / "npz" / "1.npz") as data:
        assert np.array_equal(data["arr_0"], picture)


def test_compress_levels_in_the_config():
    cfg = parse_config({"compress": True, "representations": {"a": {"type": "rgb"}, "b": {"type": "hsv",
                                                                                            "compress": 1}}})
    assert [r.compress for r in cfg.representations] == [6, 1]
    with pytest.raises(ConfigError, match=r"representations\.a\.compress: expected true \(level 6\), false or"):
        parse_config({"representations": {"a": {"type": "rgb", "compress": 10}}})


def test_npy_outputs_are_read_back_rebuilt_and_drawn(video: Path, tmp_path: Path, capsys):
    from test_run import do_run, metadata, write_plane_depth

    from vre_fast.cli import main

    write_plane_depth(tmp_path / "depth", 24, 48, 64)
    out = tmp_path / "out"
    depth = {"depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}, "output_formats": ["npy"]}}
    do_run(video, out, depth, frames=(0, 4))
    stored = np.load(out / "depth" / "npy" / "2.npy")
    assert stored.dtype == np.float32 and not (out / "depth" / "npz").exists()  # external keeps its dtype
    normals = {"normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {"sensor_fov": 75}}}
    result = do_run(video, out, {**depth, **normals}, frames=(0, 4))
    assert {b.name: b.stats.loaded for b in result.bindings}["depth"] == 4  # read back from the npy files
    (out / "depth" / ".metadata.json").unlink()
    assert main(["metadata", "rebuild", str(out), "-c", str(_cfg_file(tmp_path, {**depth, **normals}))]) == 0
    assert sorted(metadata(out, "depth")["frames"]) == [0, 1, 2, 3]
    assert main(["collage", str(out), "-o", str(tmp_path / "c.mp4")]) == 0
    assert "4 frames written" in capsys.readouterr().out


def _cfg_file(tmp_path: Path, reprs: dict) -> Path:
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"batch_size": 4, "representations": reprs}))
    return path


def test_output_dtype_stores_that_dtype_and_is_part_of_the_definition(video: Path, tmp_path: Path):
    from test_run import do_run, metadata, npz

    from vre_fast import StoreError

    out = tmp_path / "out"
    do_run(video, out, {"hsv": {"type": "hsv", "output_dtype": "float32"}, "rgb": {"type": "rgb"}}, frames=(0, 2))
    assert npz(out, "hsv", 1).dtype == np.float32 and metadata(out, "hsv")["definition"]["output_dtype"] == "float32"
    with pytest.raises(StoreError, match=r"output_dtype: 'float32' on disk, '<unset>' now"):
        do_run(video, out, {"hsv": {"type": "hsv"}}, frames=(0, 2))
    with pytest.raises(ConfigError, match=r"representations\.rgb: output_dtype: float16 cannot hold this "
                                          r"representation's uint8 outputs"):
        do_run(video, out, {"rgb": {"type": "rgb", "output_dtype": "float16"}})
    with pytest.raises(ConfigError, match=r"representations\.rgb\.output_dtype: expected one of"):
        parse_config({"representations": {"rgb": {"type": "rgb", "output_dtype": "complex64"}}})
    default = tmp_path / "default"
    do_run(video, default, {"hsv": {"type": "hsv"}}, frames=(0, 1))
    assert npz(default, "hsv", 0).dtype == np.float16 and "output_dtype" not in metadata(default, "hsv")["definition"]
