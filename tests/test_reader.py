"""vre_fast.reader.VREDataset over a `vre-fast run` output: decoded values, missing-data policies, statistics,
derived representations, prefetch, DataLoader workers, read-only datasets, bad input."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_video
from test_hardening import read_only
from test_run import do_run, write_plane_depth

from vre_fast.errors import ConfigError, RepresentationError, StoreError, VreError
from vre_fast.reader import Prefetcher, VREDataset, dataset_info
from vre_fast.reader.prefetch import RecycledArrays
from vre_fast.reader.statistics import RunningStatistics
from vre_fast.store import FrameFiles, RepresentationMetadata

CLASSES = ["a", "b", "c", "d"]
HEIGHT, WIDTH, FRAMES = 48, 64, 24


def make_dataset(root: Path) -> Path:
    """OUT with rgb, hsv (frames 0-17 only), a class map, normals (frames 4-23 only, from a plane depth) and a
    binary mask stored as npy; returns OUT."""
    root.mkdir(parents=True, exist_ok=True)
    video = make_video(root / "video.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    write_plane_depth(root / "depth", FRAMES, HEIGHT, WIDTH)
    (root / "semantic").mkdir()
    ramp = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    for i in range(FRAMES):
        np.savez(root / "semantic" / f"{i}.npz", ((ramp + 97 * i) // 300 % 4).astype(np.uint8))
    out = root / "out"
    semantic = {"type": "external", "parameters": {"path": str(root / "semantic"), "classes": CLASSES}}
    depth = {"type": "external", "parameters": {"path": str(root / "depth")}, "output_formats": []}
    do_run(video, out, {"rgb": {"type": "rgb"}, "semantic": semantic,
                        "water": {"type": "binary_mask", "dependencies": ["semantic"],
                                  "parameters": {"classes": ["b", "c"]}, "output_formats": ["npy"]}})
    do_run(video, out, {"hsv": {"type": "hsv"}}, frames=(0, 18))
    do_run(video, out, {"depth": depth, "normals": {"type": "normals_svd", "dependencies": ["depth"], "parameters": {
        "sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 5}}}, frames=(4, 24))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("reader"))


def stored(out: Path, name: str, frame: int) -> np.ndarray:
    return FrameFiles(out / name).read(frame)


DERIVED = {
    "water2": {"type": "binary_mask", "dependencies": ["semantic"], "parameters": {"classes": ["b", "c"]}},
    "hsv2": {"type": "hsv"},
    "coarse": {"type": "semantic_mapper", "dependencies": ["semantic"],
               "parameters": {"mapping": {"dry": ["a", "d"], "wet": ["b", "c"]}}},
    "wet": {"type": "binary_mask", "dependencies": ["coarse"], "parameters": {"classes": ["wet"]}},
}


def assert_batches_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_batches_equal(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_items_are_the_stored_arrays_decoded(dataset: Path):
    ds = VREDataset(dataset, frames=range(4, 18))
    assert ds.names == ["hsv", "normals", "rgb", "semantic", "water"] and ds.frames == list(range(4, 18))
    for position, frame in enumerate(ds.frames):
        item = ds[position]
        assert item["frame"] == frame
        assert item["rgb"].dtype == torch.uint8 and np.array_equal(item["rgb"].numpy(), stored(dataset, "rgb", frame))
        for name in ("hsv", "normals"):  # float16 on disk, float32 in the item
            assert stored(dataset, name, frame).dtype == np.float16 and item[name].dtype == torch.float32
            assert np.array_equal(item[name].numpy(), stored(dataset, name, frame).astype(np.float32))
        assert item["semantic"].dtype == torch.int64  # a class map: class ids
        assert np.array_equal(item["semantic"].numpy(), stored(dataset, "semantic", frame))
        assert item["water"].dtype == torch.uint8  # a mask, read from npy
        assert np.array_equal(item["water"].numpy(), stored(dataset, "water", frame))
    one_hot = VREDataset(dataset, ["semantic"], frames=[5], one_hot=True)[0]["semantic"]
    assert one_hot.dtype == torch.float32 and one_hot.shape == (HEIGHT, WIDTH, len(CLASSES))
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert np.array_equal(one_hot.argmax(-1).numpy(), stored(dataset, "semantic", 5))
    # indexing: int (negative too), slice, positions, frame indices
    assert ds[-1]["frame"] == 17 and ds[2:5]["frame"].tolist() == [6, 7, 8] and ds[[0, 3]]["frame"].tolist() == [4, 7]
    assert ds[torch.tensor([1, 2])]["frame"].tolist() == [5, 6] and ds[torch.tensor(2)]["frame"] == 6
    batch = ds.by_frames([9, 4])
    assert batch["frame"].tolist() == [9, 4] and batch["hsv"].shape == (2, HEIGHT, WIDTH, 3)
    assert torch.equal(batch["semantic"][0], ds[5]["semantic"])
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(StoreError, match=r"frame\(s\) \[30\] are not in this dataset of 14 frames \(4\.\.17\)"):
        ds.by_frames([30])


def test_every_missing_data_policy(dataset: Path):
    with pytest.raises(StoreError, match=r"representation 'hsv' in .*out lacks 6 of the dataset's frames "
                                         r"\(18, 19, 20, 21, 22, 23\); choose missing='drop'"):
        VREDataset(dataset)
    assert VREDataset(dataset, missing="drop").frames == list(range(4, 18))
    # drops apply first: normals drops 0-3, then hsv may fill the frames it lacks
    mixed = VREDataset(dataset, ["hsv", "normals"], missing={"*": "drop", "hsv": "fill_zero"})
    assert mixed.frames == list(range(4, 24))
    assert not mixed.by_frames([20])["hsv"].any() and mixed.by_frames([20])["normals"].any()
    nan = VREDataset(dataset, ["hsv", "normals"], missing="fill_nan")
    assert nan.frames == list(range(24))
    assert nan.by_frames([20])["hsv"].isnan().all() and nan.by_frames([2])["normals"].isnan().all()
    assert not nan.by_frames([10])["hsv"].isnan().any()
    with pytest.raises(ConfigError, match=r"fill_nan cannot fill 'semantic' \(int64 values hold no NaN\)"):
        VREDataset(dataset, ["semantic"], missing="fill_nan")
    none = VREDataset(dataset, ["hsv", "rgb"], missing={"hsv": "fill_none", "*": "raise"})
    assert none[20]["hsv"] is None and none[20]["rgb"] is not None
    batch = none[16:20]
    assert batch["present"]["hsv"].tolist() == [True, True, False, False] and "rgb" not in batch["present"]
    assert batch["hsv"][:2].any() and not batch["hsv"][2:].any()
    loader = torch.utils.data.DataLoader(none, batch_size=4, collate_fn=none.collate_fn)
    assert [b["present"]["hsv"].sum().item() for b in loader] == [4, 4, 4, 4, 2, 0]
    with pytest.raises(ConfigError, match=r"unknown policy 'skip' for 'hsv'; known: raise, drop, fill_zero"):
        VREDataset(dataset, ["hsv"], missing="skip")
    with pytest.raises(ConfigError, match=r"missing: \['depth'\] not among"):
        VREDataset(dataset, ["hsv"], missing={"depth": "drop"})


def test_statistics_equal_numpys_over_the_same_frames_and_are_cached(dataset: Path, monkeypatch):
    shutil.rmtree(dataset / ".statistics", ignore_errors=True)
    kinds = {"*": "standardization", "rgb": "min_max"}
    ds = VREDataset(dataset, ["hsv", "normals", "rgb", "semantic"], missing="drop", normalization=kinds)
    assert sorted(ds.statistics) == ["hsv", "normals", "rgb"]  # "*" leaves the class map alone
    for name in ds.statistics:
        values = np.stack([stored(dataset, name, f) for f in ds.frames]).astype(np.float64).reshape(-1, 3)
        stats = ds.statistics[name]
        np.testing.assert_array_equal(stats.min, values.min(0))
        np.testing.assert_array_equal(stats.max, values.max(0))
        np.testing.assert_allclose(stats.mean, values.mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats.std, values.std(0), rtol=1e-10)
    hsv = stored(dataset, "hsv", 6).astype(np.float32)
    expected = (hsv - ds.statistics["hsv"].mean.astype(np.float32)) / ds.statistics["hsv"].std.astype(np.float32)
    np.testing.assert_allclose(ds.by_frames([6])["hsv"][0].numpy(), expected, atol=1e-5)
    rgb = ds[0]["rgb"]
    assert rgb.dtype == torch.float32 and rgb.min() >= 0 and rgb.max() <= 1 and ds.specs["rgb"].dtype == np.float32
    # cached, keyed by the frames covered: the same frames load, other frames compute
    assert len(list((dataset / ".statistics").glob("*.json"))) == 3

    def no_pass(self, values):
        raise AssertionError("statistics recomputed")

    monkeypatch.setattr(RunningStatistics, "update", no_pass)
    again = VREDataset(dataset, ["hsv", "normals", "rgb", "semantic"], missing="drop", normalization=kinds)
    np.testing.assert_array_equal(again.statistics["hsv"].std, ds.statistics["hsv"].std)
    with pytest.raises(AssertionError, match="recomputed"):
        VREDataset(dataset, ["hsv"], frames=range(0, 10), normalization="min_max")
    given = {"min": [0, 0, 0], "max": [1, 1, 1], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    passed = VREDataset(dataset, ["hsv"], frames=range(0, 10), normalization="standardization",
                        statistics={"hsv": given})
    np.testing.assert_allclose(passed[0]["hsv"].numpy(), (stored(dataset, "hsv", 0).astype(np.float32) - 0.5) * 4)
    with pytest.raises(StoreError, match=r"statistics\['hsv'\]: 1 channel\(s\) given, 'hsv' has 3"):
        VREDataset(dataset, ["hsv"], frames=[0], normalization="min_max",
                   statistics={"hsv": {"min": 0, "max": 1, "mean": 0, "std": 1}})
    with pytest.raises(ConfigError, match=r"\['semantic'\] are class maps"):
        VREDataset(dataset, ["semantic"], normalization={"semantic": "min_max"})


def test_derived_representations_equal_what_vre_fast_run_stored(dataset: Path):
    ds = VREDataset(dataset, ["water2", "hsv2", "coarse", "wet"], derived=DERIVED, frames=range(18))
    for derived, ran in (("water2", "water"), ("hsv2", "hsv")):  # the definition `vre-fast run` recorded
        definition = json.loads(json.dumps(ds.derived.nodes[derived].representation.definition()))
        assert definition == RepresentationMetadata.read(dataset / ran).definition
    for position, frame in enumerate(ds.frames):
        item = ds[position]
        assert np.array_equal(item["water2"].numpy(), stored(dataset, "water", frame))
        assert np.array_equal(item["wet"].numpy(), stored(dataset, "water", frame))  # through a derived class map
        assert np.array_equal(item["hsv2"].numpy(), stored(dataset, "hsv", frame).astype(np.float32))
        assert item["coarse"].dtype == torch.int64 and int(item["coarse"].max()) <= 1
    assert not (dataset / "water2").exists()  # never stored
    with pytest.raises(ConfigError, match=r"derived\.flow\.type: 'optical_flow_classical' cannot be derived at read "
                                          r"time: it needs frame t\+1"):
        VREDataset(dataset, derived={"flow": {"type": "optical_flow_classical"}})
    with pytest.raises(ConfigError, match=r"derived\.hed\.type: 'edges_hed' cannot be derived .* a learned type"):
        VREDataset(dataset, derived={"hed": {"type": "edges_hed"}})
    with pytest.raises(ConfigError, match=r"derived\.m\.dependencies: \['labels'\] neither stored"):
        VREDataset(dataset, derived={"m": {"type": "binary_mask", "dependencies": ["labels"],
                                           "parameters": {"classes": [1]}}})
    with pytest.raises(ConfigError, match=r"derived\.m: 'm\.semantic' has no class 'sky'"):
        VREDataset(dataset, derived={"m": {"type": "binary_mask", "dependencies": ["semantic"],
                                           "parameters": {"classes": ["sky"]}}})
    with pytest.raises(ConfigError, match=r"derived: \['hsv'\] are stored in the dataset already"):
        VREDataset(dataset, derived={"hsv": {"type": "hsv"}})


def test_a_derived_representation_that_fails_names_itself_and_the_frame(dataset: Path, monkeypatch):
    from vre_fast.representations.binary_mask import BinaryMask

    def broken(self, batch):
        raise ValueError("boom")

    monkeypatch.setattr(BinaryMask, "compute", broken)
    ds = VREDataset(dataset, ["rgb"], derived={"m": DERIVED["water2"]}, frames=[3])
    with pytest.raises(RepresentationError, match=r"representation 'm' failed on frame 3: ValueError: boom"):
        VREDataset(dataset, ["m"], derived={"m": DERIVED["water2"]}, frames=[3])
    assert ds[0]["rgb"].shape == (HEIGHT, WIDTH, 3)


def test_prefetch_gives_the_same_batches_as_none(dataset: Path):
    ds = VREDataset(dataset, ["hsv", "rgb", "water2"], derived=DERIVED, missing="drop")
    plain = list(ds.batches(4, prefetch=0, shuffle=True, seed=3))
    ahead = list(ds.batches(4, prefetch=3, shuffle=True, seed=3))
    assert len(plain) == len(ahead) == 5 and sorted(torch.cat([b["frame"] for b in plain]).tolist()) == ds.frames
    for a, b in zip(plain, ahead):
        assert_batches_equal(a, b)
    assert [len(b["frame"]) for b in ds.batches(4, drop_last=True)] == [4, 4, 4, 4]  # of 18


def test_prefetcher_keeps_its_depth_ahead_and_no_more():
    running, most, lock = [0], [0], threading.Lock()

    def job(i: int):
        def read():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.01)
            with lock:
                running[0] -= 1
            return i
        return read

    prefetcher = Prefetcher((job(i) for i in range(20)), depth=3, threads=3)
    results = []
    for value in prefetcher:
        time.sleep(0.02)  # the consumer is slower: the read-ahead fills up to its depth
        results.append(value)
    assert results == list(range(20)) and most[0] == 3 and prefetcher.most_in_flight == 3
    one_thread = Prefetcher((job(i) for i in range(8)), depth=3, threads=1)  # 3 ahead, read one at a time
    most[0] = 0
    assert [v for v in one_thread if not time.sleep(0.02)] == list(range(8))
    assert most[0] == 1 and one_thread.most_in_flight == 3
    assert Prefetcher([], depth=3).threads == max(1, min(3, len(os.sched_getaffinity(0)) - 1))

    def failing():
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher([job(0), failing, job(2)], depth=2))


def test_batch_memory_is_used_again_only_once_nothing_refers_to_it():
    memory = RecycledArrays()
    first = memory.empty((4, 3), np.float32)
    address = first.ctypes.data
    view = torch.from_numpy(first)[1:]  # a view of the batch tensor keeps the array in use
    del first
    second = memory.empty((4, 3), np.float32)
    assert second.ctypes.data != address and memory.empty((2,), np.uint8).shape == (2,)
    del view
    assert memory.empty((4, 3), np.float32).ctypes.data == address  # free again: handed out again
    numpy_view = second[1:]
    del second
    assert memory.empty((4, 3), np.float32).ctypes.data != numpy_view.base.ctypes.data


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")
def test_a_dataloader_with_two_workers_gives_the_same_items(dataset: Path):
    ds = VREDataset(dataset, ["hsv", "semantic", "water2"], derived=DERIVED, missing="drop",
                    normalization={"hsv": "standardization"})
    loader = ds.loader(batch_size=5, num_workers=2, pin_memory=True)  # persistent, forkserver workers
    assert loader.persistent_workers and loader.num_workers == 2
    expected = [ds[i:i + 5] for i in range(0, len(ds), 5)]
    for _ in range(2):  # the persistent workers serve a second epoch
        got = list(loader)
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_batches_equal(a, b)
    # stored representations only: a plain forked DataLoader works too
    stored_only = VREDataset(dataset, ["hsv", "semantic"], missing="drop")
    forked = torch.utils.data.DataLoader(stored_only, batch_size=5, num_workers=2, collate_fn=stored_only.collate_fn,
                                         multiprocessing_context="fork")
    for a, b in zip(forked, (stored_only[i:i + 5] for i in range(0, len(stored_only), 5))):
        assert_batches_equal(a, b)
    # a derived one in a process forked after this one ran numba's OpenMP kernels: one clear error, not an abort
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    child = context.Process(target=read_first_item, args=(ds, errors))
    child.start()
    message = errors.get(timeout=60)
    child.join()
    assert re.search(r"'water2' runs numba's OpenMP kernels.*multiprocessing_context='forkserver'", message), message


def read_first_item(ds: VREDataset, errors) -> None:
    try:
        ds[0]
        errors.put("no error")
    except VreError as exc:
        errors.put(str(exc))


def test_a_read_only_dataset_reads(dataset: Path, tmp_path: Path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("*.lock", ".statistics"))
    with read_only(copy, monkeypatch):
        ds = VREDataset(copy, ["hsv", "rgb", "water2"], derived=DERIVED, missing="drop",
                        normalization={"hsv": "min_max"})  # statistics computed, not cached
        assert ds[0]["hsv"].max() <= 1 and np.array_equal(ds[0]["rgb"].numpy(), stored(copy, "rgb", 0))
        assert dataset_info(copy)["representations"]["hsv"]["complete"] == 18
    assert not (copy / ".statistics").exists()


def test_bad_input_is_one_clear_error(dataset: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    path = copy / "rgb" / "npz" / "5.npz"
    path.write_bytes(path.read_bytes()[:100])
    ds = VREDataset(copy, ["rgb"])  # the damage shows where the frame is read
    with pytest.raises(StoreError, match=r"cannot read .*rgb/npz/5\.npz: .*metadata rebuild"):
        ds[5]
    with pytest.raises(StoreError, match=r"no representation\(s\) \['edges'\]; stored: \['hsv', 'normals', 'rgb'"):
        VREDataset(copy, ["edges"])
    with pytest.raises(StoreError, match=r"is not a dataset: no representation folder with a \.metadata\.json"):
        VREDataset(tmp_path)
    with pytest.raises(ConfigError, match=r"one_hot: \['rgb'\] are not class maps"):
        VREDataset(copy, ["rgb"], one_hot=["rgb"])
    with pytest.raises(StoreError, match=r"classes: only for datasets made by VRE"):
        VREDataset(copy, ["rgb"], classes={"rgb": 3})
