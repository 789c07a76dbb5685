"""The reader on a dataset written by the original VRE 1.18.6 itself (tests/data/vre_1_18_6, made by
tests/data/make_vre_dataset.py in VRE's side venv): its layout, its metadata, holes, derived
representations, `vre-fast info`, shards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vre_fast.cli import main
from vre_fast.errors import StoreError
from vre_fast.reader import VREDataset, dataset_info, export_shards

VRE_DATASET = Path(__file__).parent / "data" / "vre_1_18_6"
CLASSES = {"semantic": ["dark", "dim", "bright", "light"]}


def vre_array(name: str, frame: int) -> np.ndarray:
    """What VRE's own NpIORepresentationMixin.load_from_disk returns: arr_0, floats as float32."""
    path = next((VRE_DATASET / name).glob(f"np[yz]/{frame}.np[yz]"))
    data = np.load(path, allow_pickle=False)
    data = data if isinstance(data, np.ndarray) else data["arr_0"]
    return data.astype(np.float32) if np.issubdtype(data.dtype, np.floating) else data


def test_a_vre_dataset_reads_as_vre_stored_it():
    ds = VREDataset(VRE_DATASET, missing={"*": "raise", "hsv": "fill_nan"}, classes=CLASSES)
    assert ds.store.kind == "vre 1.18.6" and ds.names == ["depth", "hsv", "normals", "rgb", "semantic"]
    assert ds.frames == list(range(6))
    for position in range(6):
        item = ds[position]
        assert item["rgb"].dtype == torch.uint8 and np.array_equal(item["rgb"].numpy(), vre_array("rgb", position))
        assert item["semantic"].dtype == torch.int64  # a class map, by the classes given
        assert np.array_equal(item["semantic"].numpy(), vre_array("semantic", position))
        assert item["depth"].shape == (24, 32, 1) and np.array_equal(item["depth"].numpy(), vre_array("depth", position))
        assert np.array_equal(item["normals"].numpy(), vre_array("normals", position))  # VRE's (n + 1) / 2
        if position < 4:  # float16 on disk (VRE's output_dtype), float32 here
            assert np.array_equal(item["hsv"].numpy(), vre_array("hsv", position))
        else:  # VRE computed hsv for frames 0-3 only
            assert item["hsv"].isnan().all()
    assert VREDataset(VRE_DATASET, missing="drop").frames == [0, 1, 2, 3]
    with pytest.raises(StoreError, match=r"'hsv' in .*vre_1_18_6 lacks 2 of the dataset's frames \(4, 5\)"):
        VREDataset(VRE_DATASET)
    one_hot = VREDataset(VRE_DATASET, ["semantic"], classes=CLASSES, one_hot=True)[2]["semantic"]
    assert one_hot.shape == (24, 32, 4) and np.array_equal(one_hot.argmax(-1).numpy(), vre_array("semantic", 2))
    with pytest.raises(StoreError, match=r"classes: \['labels'\] not among the representations"):
        VREDataset(VRE_DATASET, classes={"labels": 3})


def test_derived_representations_and_statistics_on_a_vre_dataset(tmp_path: Path):
    copy = shutil.copytree(VRE_DATASET, tmp_path / "vre")  # the statistics cache is written beside the data
    ds = VREDataset(copy, ["bright", "hsv2", "normals"], classes=CLASSES, missing="drop",
                    normalization={"normals": "standardization"},
                    derived={"bright": {"type": "binary_mask", "dependencies": ["semantic"],
                                        "parameters": {"classes": ["bright", "light"]}},
                             "hsv2": {"type": "hsv"}})  # from the frames VRE stored as rgb
    normals = np.stack([vre_array("normals", f) for f in range(6)]).reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(ds.statistics["normals"].mean, normals.mean(0), rtol=1e-12)
    np.testing.assert_allclose(ds.statistics["normals"].std, normals.std(0), rtol=1e-10)
    for position in range(6):
        item = ds[position]
        assert np.array_equal(item["bright"].numpy(), (vre_array("semantic", position) >= 2).astype(np.uint8))
        if position < 4:  # VRE's HSV (float64 math, stored float16) against ours from its rgb
            np.testing.assert_allclose(item["hsv2"].numpy(), vre_array("hsv", position), atol=1e-3)
    assert len(list((copy / ".statistics").glob("normals-*.json"))) == 1


def test_vre_fast_info_describes_a_vre_dataset(capsys):
    info = dataset_info(VRE_DATASET)
    assert info["kind"] == "vre 1.18.6" and info["frames"] == 6 and len(info["runs"]) == 2
    hsv = info["representations"]["hsv"]
    assert (hsv["complete"], hsv["failed"], hsv["missing"], hsv["formats"]) == (4, 0, 2, {"npz": 4})
    assert (hsv["dtype"], hsv["shape"]) == ("float16", [24, 32, 3])
    assert info["representations"]["depth"]["formats"] == {"npy": 6}
    assert main(["info", str(VRE_DATASET), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["representations"]["rgb"]["complete"] == 6


def test_a_vre_dataset_exports_to_shards_that_read_back(tmp_path: Path):
    export_shards(VRE_DATASET, tmp_path / "shards", maxcount=4, classes=CLASSES)
    direct = VREDataset(VRE_DATASET, classes=CLASSES, missing="fill_none")
    sharded = VREDataset.from_shards(tmp_path / "shards", missing="fill_none")
    assert sharded.frames == direct.frames and sharded.names == direct.names
    for position in range(6):
        a, b = direct[position], sharded[position]
        for name in direct.names:
            assert (a[name] is None) == (b[name] is None) and (a[name] is None or torch.equal(a[name], b[name]))
