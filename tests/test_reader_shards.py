"""`vre-fast export-shards`: WebDataset shards that round trip through our reader and through `webdataset`,
shard limits, a killed export that resumes, and `vre-fast info`."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_reader import make_dataset, stored

from vre_fast.cli import main
from vre_fast.errors import StoreError
from vre_fast.reader import VREDataset, export_shards, sample_key


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("shards"))


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("shard-*.tar"))}


def test_shards_round_trip_through_our_reader(dataset: Path, tmp_path: Path):
    report = export_shards(dataset, tmp_path / "shards", maxcount=10)
    assert (report.shards, report.written, report.samples) == (3, 3, 24)
    record = json.loads((tmp_path / "shards" / "export.json").read_text())
    assert record["complete"] and [s["samples"] for s in record["shards"]] == [10, 10, 4]
    direct = VREDataset(dataset, missing="fill_none")
    sharded = VREDataset.from_shards(tmp_path / "shards", missing="fill_none")
    assert sharded.frames == direct.frames == list(range(24)) and sharded.names == direct.names
    for position in range(24):
        a, b = direct[position], sharded[position]
        for name in direct.names:  # equal values, and equal holes (hsv lacks 18-23, normals 0-3)
            assert (a[name] is None) == (b[name] is None), (name, position)
            assert a[name] is None or (a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]))
    stats = VREDataset.from_shards(tmp_path / "shards", ["hsv"], frames=range(18), normalization="min_max").statistics
    np.testing.assert_array_equal(stats["hsv"].max, VREDataset(dataset, ["hsv"], frames=range(18),
                                                               normalization="min_max").statistics["hsv"].max)
    again = export_shards(dataset, tmp_path / "shards", maxcount=10)  # finished: nothing to do
    assert again.written == 0 and again.resumed_at is None


def test_shards_are_read_by_webdataset_itself(dataset: Path, tmp_path: Path):
    wds = pytest.importorskip("webdataset")
    export_shards(dataset, tmp_path / "shards", maxcount=10)
    urls = [str(p) for p in sorted((tmp_path / "shards").glob("shard-*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8"))
    assert len(samples) == 24
    for frame, sample in enumerate(samples):
        assert sample["__key__"] == sample_key("video", frame) == f"video_{frame:06d}" and "." not in sample["__key__"]
        assert sample["json"]["frame"] == frame and sample["json"]["video"] == "video"
        assert np.array_equal(sample["rgb.png"], stored(dataset, "rgb", frame))  # a picture: png
        assert np.array_equal(sample["semantic.npy"], stored(dataset, "semantic", frame))
        assert np.array_equal(sample["water.npy"], stored(dataset, "water", frame))
        assert sample["json"]["representations"]["semantic"]["dtype"] == "uint8"
        if frame < 18:
            assert sample["hsv.npy"].dtype == np.float16 and np.array_equal(sample["hsv.npy"],
                                                                            stored(dataset, "hsv", frame))
        else:
            assert "hsv.npy" not in sample  # the frame's sample holds what the dataset has
        assert ("normals.npy" in sample) == (frame >= 4)


def test_maxsize_bounds_each_shard(dataset: Path, tmp_path: Path):
    sample = 60_000  # about one frame's members
    report = export_shards(dataset, tmp_path / "shards", maxsize=3 * sample)
    sizes = [p.stat().st_size for p in sorted((tmp_path / "shards").glob("shard-*.tar"))]
    assert report.shards == len(sizes) > 3 and all(size <= 3 * sample for size in sizes)
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as tar:
        assert all(m.mtime == 0 for m in tar.getmembers())
    assert len(VREDataset.from_shards(tmp_path / "shards", missing="fill_zero")) == 24


def kill_on_member(dataset: Path, target: Path, member: int) -> None:
    """Runs the export and SIGKILLs itself when it adds its `member`-th tar member."""
    real, added = tarfile.TarFile.addfile, [0]

    def addfile(self, info, fileobj=None):
        added[0] += 1
        if added[0] == member:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, info, fileobj)

    tarfile.TarFile.addfile = addfile
    export_shards(dataset, target, maxcount=4)


def test_a_killed_export_resumes_at_its_first_unfinished_shard(dataset: Path, tmp_path: Path, capsys):
    export_shards(dataset, tmp_path / "whole", maxcount=4)
    # members per sample: the arrays it has and the json; shards 0 and 1 (frames 0-7) hold 4 * 5 + 4 * 6 members
    child = multiprocessing.get_context("fork").Process(target=kill_on_member,
                                                        args=(dataset, tmp_path / "killed", 4 * 5 + 4 * 6 + 7))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL
    record = json.loads((tmp_path / "killed" / "export.json").read_text())
    assert not record["complete"] and [s["name"] for s in record["shards"]] == ["shard-000000.tar", "shard-000001.tar"]
    assert list((tmp_path / "killed").glob(".shard-000002.tar.*.tmp"))  # the shard being written when killed
    with pytest.raises(StoreError, match=r"the export is unfinished \(2 shards so far\); run `vre-fast export-shards"):
        VREDataset.from_shards(tmp_path / "killed")
    assert main(["export-shards", str(dataset), "-o", str(tmp_path / "killed"), "--maxcount", "4"]) == 0
    assert capsys.readouterr().out.strip().endswith("24 frames in 6 shards in "
                                                    f"{tmp_path / 'killed'}; 4 written now (resumed at shard 2)")
    assert shard_bytes(tmp_path / "killed") == shard_bytes(tmp_path / "whole")  # as if never killed
    assert not list((tmp_path / "killed").glob(".*.tmp"))
    assert main(["export-shards", str(dataset), "-o", str(tmp_path / "killed"), "--maxcount", "5"]) == 1
    err = capsys.readouterr().err
    assert "holds an export of" in err and "with other maxcount; export into another folder" in err


def test_vre_fast_info(dataset: Path, capsys):
    assert main(["info", str(dataset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "vre-fast" and info["frames"] == 24 and info["sources"][0]["num_frames"] == 24
    hsv, water = info["representations"]["hsv"], info["representations"]["water"]
    assert (hsv["complete"], hsv["failed"], hsv["missing"], hsv["formats"]) == (18, 0, 6, {"npz": 18})
    assert (hsv["type"], hsv["dtype"], hsv["shape"]) == ("hsv", "float16", [48, 64, 3]) and hsv["bytes"] > 0
    assert water["formats"] == {"npy": 24} and water["dtype"] == "uint8"
    runs = {r["run_id"]: r for r in info["runs"]}
    assert len(runs) == 3 and all(r["status"] == "completed" for r in runs.values())
    assert set(hsv["runs"]) < set(runs) and sum(hsv["runs"].values()) == 18
    assert main(["info", str(dataset)]) == 0
    table = capsys.readouterr().out
    assert "normals" in table and "npz:20" in table and "24 frames" in table
    assert main(["info", str(dataset / "hsv")]) == 1
    assert "is not a dataset" in capsys.readouterr().err
