"""VRE 1.18.6 drop-in: VRE's own configs (tests/data/vre_configs, copied from its repository) load and map onto
vre-fast's graph, or fail with one error listing every item vre-fast lacks; convert-config; and a directory VRE
itself wrote (tests/data/vre_resume, made by tests/data/make_vre_resume_dataset.py) is read and resumed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from vre_fast._builder import build_graph
from vre_fast._config_loader import load_config, parse_config
from vre_fast.cli import main
from vre_fast.errors import ConfigError, StoreError
from vre_fast.reader import dataset_info
from vre_fast.runner import RunOptions, run
from vre_fast.vre_compat.table import VRE_TYPES

CONFIGS = Path(__file__).parent / "data" / "vre_configs"
RESUME = Path(__file__).parent / "data" / "vre_resume"
SVD = {"sensor_fov": 75.0, "sensor_size": (3840, 2160), "window_size": 11}

# every config VRE ships: the graph it maps to, or the items of the one error (and how many there are)
MAPPED = {
    "examples__vre_streaming__cfg_rgb.yaml": {"rgb": ("rgb", {}, None)},
    "test__vre_streaming__cfg_rgb.yaml": {"rgb": ("rgb", {}, None)},
    "examples__vre_streaming__cfg_depth.yaml": {"rgb": ("rgb", {}, None),
                                                "depth_dpt": ("depth_dpt", {"variant": "large_384", "output": "vre"},
                                                              "float32")},
}
FLOW = ("optical_flow_rife", {"variant": "hdv3", "uhd": False, "compute_backward_flow": False, "delta": 1}, "float32")
DPT = ("depth_dpt", {"variant": "large_384", "output": "vre"}, "float32")


def lcm(steps: int) -> tuple:
    return ("depth_marigold", {"variant": "lcm_v1_0", "steps": steps, "ensemble_size": 1, "processing_resolution": 768},
            "float32")


def normals(dtype: str) -> tuple:
    return ("normals_svd", {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 11}, dtype)


def m2f(variant: str) -> tuple:  # these configs say disk_data_argmax: True (VRE's default is False: probabilities)
    return ("semantic_mask2former", {"probabilities": False, "variant": variant, "postprocess": "vre"}, None)


DRONESCAPES = {"rgb": ("rgb", {}, None), "opticalflow_rife": FLOW, "depth_marigold": lcm(1),
               "normals_svd(depth_marigold)": normals("float16"),
               "semantic_mask2former_mapillary_49189528_0": m2f("swin_large_mapillary"),
               "semantic_mask2former_coco_47429163_0": m2f("swin_large_coco"),
               "semantic_mask2former_mapillary_49189528_1": m2f("r50_mapillary")}
MAPPED |= {
    "examples__semantic_mapper__cfg.yaml": DRONESCAPES,
    "test__task_mapped_representations__cfg.yaml": DRONESCAPES,
    "examples__vre_manual_representation_run__cfg.yaml": {
        "depth_marigold": lcm(4), "normals_svd(depth_marigold)": normals("float32"), "depth_dpt": DPT,
        "normals_svd(depth_dpt)": normals("float32")},
    "examples__vre_streaming__cfg.yaml": {
        "rgb": ("rgb", {}, None), "depth_dpt": DPT, "normals_svd(depth_dpt)": normals("float32"),
        "depth_marigold": lcm(4), "normals_svd(depth_marigold)": normals("float32")},
    "examples__vre_streaming__cfg_rgb_marigold.yaml": {"rgb": ("rgb", {}, None), "depth_marigold": lcm(4)},
}
# the configs whose default_io_parameters differ: image_format not-set (npz only), compress from an unset
# variable's default (False), or no io section at all (VRE's manual example computes in Python, stores nothing)
IO = {"examples__semantic_mapper__cfg.yaml": (("npz",), 6), "test__task_mapped_representations__cfg.yaml": (("npz",), 6),
      "examples__vre_streaming__cfg_rgb_marigold.yaml": (("npz",), 0),
      "examples__vre_manual_representation_run__cfg.yaml": ((), 6)}
FASTSAM = "type: 'soft-segmentation/fastsam' (no vre-fast representation yet)"
REFUSED = {
    "examples__batched_experiment__cfg.yaml": (2, [f"fastsam(s).{FASTSAM}", f"fastsam(x).{FASTSAM}"]),
    "examples__vre_streaming__cfg_rgb_safeuav.yaml": (1, [
        "safeuav.parameters.variant: 'model_150k' (VRE fetches model_150k.ckpt"]),
    "test__vre_batched__cfg.yaml": (2, [f"fastsam(s).{FASTSAM}", "safeuav.parameters.variant: 'model_430k' "
                                        "(VRE fetches model_430k.ckpt from its weights repository"]),
}


def test_every_config_vre_ships_is_covered():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted({*MAPPED, *REFUSED})


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_vre_configs_with_representations_we_have_map_onto_our_graph(name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VRE_DEVICE", raising=False)
    graph = build_graph(load_config(CONFIGS / name))
    assert {n.name: (n.cfg.type, n.cfg.parameters, n.cfg.output_dtype) for n in graph.nodes} == MAPPED[name]
    for node in graph.nodes:  # default_io_parameters: npz + png, compress: True (np.savez_compressed's level 6)
        assert (node.cfg.output_formats, node.cfg.compress, node.cfg.device) == (*IO.get(name, (("npz", "png"), 6)),
                                                                                 "cpu")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_vre_configs_with_representations_we_lack_give_one_error_listing_every_item(name: str):
    count, items = REFUSED[name]
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / name)
    message = str(error.value)
    assert message.startswith(f"{CONFIGS / name}: {count} item(s) of this VRE config cannot be mapped onto vre-fast: ")
    assert message.count("; representations.") == count - 1 and "\n" not in message
    for item in items:
        assert f"representations.{item}" in message


def write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_sections_parentheses_dependencies_and_interpolations_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BATCH_SIZE", "3")
    monkeypatch.delenv("IMAGE_FORMAT", raising=False)
    cfg = write(tmp_path / "vre.yaml", {
        "default_compute_parameters": {"batch_size": "${oc.decode:${oc.env:BATCH_SIZE,1}}"},
        "default_io_parameters": {"binary_format": "npz", "image_format": "${oc.env:IMAGE_FORMAT,not-set}",
                                  "compress": "${oc.decode:${oc.env:COMPRESS,False}}",
                                  "output_size": '${oc.decode:${oc.env:OUTPUT_SIZE,"[54,96]"}}'},
        "default_learned_parameters": {"device": "${oc.env:VRE_DEVICE,cpu}"},
        "representations": {
            "rgb": {"type": "color/rgb", "dependencies": [], "parameters": {}, "compute_parameters": {"batch_size": 5}},
            "hsv": {"type": "color/hsv", "dependencies": ["rgb"], "parameters": {},
                    "io_parameters": {"image_format": "jpg", "compress": True}},
            "edges": {"type": "edges/canny", "dependencies": [], "parameters": {
                "threshold1": 50, "threshold2": 150, "aperture_size": 5, "l2_gradient": True}},
            "normals_svd(depth_dpt)": {"type": "normals/depth-svd", "dependencies": ["depth_dpt"],
                                       "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 11},
                                       "io_parameters": {"output_dtype": "float16"}},
            "depth_dpt": {"type": "depth/dpt", "dependencies": [], "parameters": {}},
            "flow": {"type": "optical-flow/rife", "dependencies": [], "parameters": {
                "uhd": False, "compute_backward_flow": False, "delta": 1}},
            "safeuav": {"type": "semantic-segmentation/safeuav", "dependencies": [], "parameters": {
                "variant": "ckpts/safeuav_430k.ckpt", "disk_data_argmax": True}, "learned_parameters": {"device": "cuda:1"}},
            "m2f": {"type": "semantic-segmentation/mask2former", "dependencies": [], "parameters": {
                "model_id": "49189528_0", "disk_data_argmax": True}},
            "dexined": {"type": "edges/dexined", "dependencies": [], "parameters": {}},
        }})
    graph = build_graph(load_config(cfg))
    nodes = {n.name: n for n in graph.nodes}
    params = {name: n.representation.definition()["parameters"] for name, n in nodes.items()}
    assert {name: n.cfg.type for name, n in nodes.items()} == {
        "rgb": "rgb", "hsv": "hsv", "edges": "edges_canny", "normals_svd(depth_dpt)": "normals_svd",
        "depth_dpt": "depth_dpt", "flow": "optical_flow_rife", "safeuav": "semantic_safeuav",
        "m2f": "semantic_mask2former", "dexined": "edges_dexined"}
    assert nodes["normals_svd(depth_dpt)"].inputs == {"depth": "depth_dpt"} and nodes["hsv"].inputs == {}
    assert params["edges"] == {"threshold1": 50.0, "threshold2": 150.0, "aperture_size": 5, "l2_gradient": True}
    assert {k: params["normals_svd(depth_dpt)"][k] for k in SVD} == SVD
    assert (params["depth_dpt"]["variant"], params["flow"]["variant"], params["safeuav"]["variant"],
            params["m2f"]["variant"]) == ("large_384", "hdv3", "430k", "swin_large_mapillary")
    assert params["safeuav"]["weights"] == "ckpts/safeuav_430k.ckpt"  # VRE's variant may be a checkpoint path
    assert (params["dexined"]["variant"], params["dexined"]["output"]) == ("biped", "vre")  # VRE's formula
    assert params["m2f"]["postprocess"] == "vre"  # VRE's order: the mask logits upsampled before the product
    # VRE's DPT stores clip(1 / prediction, 0, 1): the depth its normals are computed from
    inverse = np.array([[[0.0, 0.5, 2.0, -1.0]]], np.float32)
    assert np.array_equal(nodes["depth_dpt"].representation.postprocess((inverse,), None), [[[1, 1, 0.5, 0]]])
    assert params["depth_dpt"]["output"] == "vre"
    # formats, compress, sizes, dtypes and batch sizes: each representation's sections over the defaults
    assert {name: (n.cfg.output_formats, n.cfg.compress, n.cfg.output_size, n.cfg.batch_size)
            for name, n in nodes.items() if name in ("rgb", "hsv", "edges")} == {
        "rgb": (("npz",), 0, (54, 96), 5), "hsv": (("npz", "jpg"), 6, (54, 96), 3), "edges": (("npz",), 0, (54, 96), 3)}
    assert {name: n.cfg.output_dtype for name, n in nodes.items()} == {
        "rgb": None, "hsv": "float32", "edges": None, "normals_svd(depth_dpt)": "float16", "depth_dpt": "float32",
        "flow": "float32", "safeuav": None, "m2f": None, "dexined": None}
    # VRE gives its learned device to learned representations only
    assert {name: n.cfg.device for name, n in nodes.items() if n.cfg.device != "cpu"} == {"safeuav": "cuda:1"}


def test_every_unmappable_item_is_listed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_SUCH_VARIABLE", raising=False)
    cfg = write(tmp_path / "vre.yaml", {
        "default_io_parameters": {"binary_format": "npz", "image_format": "gif", "colour": True},
        "extra": 1,
        "representations": {
            "hsv": {"type": "color/hsv", "dependencies": ["edges"], "parameters": {}},
            "edges": {"type": "edges/canny", "dependencies": [], "parameters": {"threshold1": 1, "blur": 3},
                      "io_parameters": {"output_dtype": "float16"}, "learned_parameters": {"device": "cuda"}},
            "fastsam": {"type": "soft-segmentation/fastsam", "dependencies": [], "parameters": {}},
            "raft": {"type": "optical-flow/raft", "dependencies": [], "parameters": {
                "inference_height": 720, "inference_width": 1280, "iters": 5, "small": False}},
            "nope": {"type": "depth/zoe", "dependencies": [], "parameters": {}},
        }})
    with pytest.raises(ConfigError) as error:
        load_config(cfg)
    message = str(error.value)
    items = [
        "extra: not a VRE config key",
        "default_io_parameters.colour: not a VRE io parameter",
        "representations.hsv.dependencies: VRE's 'color/hsv' takes exactly one color/rgb representation, got ['edges']",
        "representations.edges.parameters.blur: not a parameter vre-fast can map for 'edges/canny'",
        "representations.edges.io_parameters.output_dtype: 'float16' (vre-fast stores 'edges_canny' as integers)",
        "representations.fastsam.type: 'soft-segmentation/fastsam' (no vre-fast representation yet)",
        "representations.raft.parameters.inference_height: 720 has no vre-fast equivalent",
        "representations.raft.parameters.inference_width: 1280 has no vre-fast equivalent",
        "representations.nope.type: 'depth/zoe' (not a VRE 1.18.6 type",
        "default_io_parameters.image_format: 'gif'",
    ]
    assert f": {len(items)} item(s) of this VRE config" in message
    for item in items:
        assert item in message
    # a missing variable without a default names its key
    write(tmp_path / "env.yaml", {"default_learned_parameters": {"device": "${oc.env:NO_SUCH_VARIABLE}"},
                                  "representations": {"rgb": {"type": "color/rgb", "dependencies": [],
                                                              "parameters": {}}}})
    with pytest.raises(ConfigError, match=r"env\.yaml: default_learned_parameters\.device: .*NO_SUCH_VARIABLE"):
        load_config(tmp_path / "env.yaml")


def test_plain_interpolations_read_as_vre_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """VRE substitutes ${...} in the text before parsing the YAML: `${oc.env:BS,4}` is the integer 4 there."""
    monkeypatch.delenv("BS", raising=False)
    monkeypatch.setenv("SIZE", "[24, 32]")
    (tmp_path / "plain.yaml").write_text(
        "default_compute_parameters:\n  batch_size: ${oc.env:BS,4}\n"
        "default_io_parameters:\n  binary_format: npz\n  compress: ${oc.env:COMPRESS,True}\n"
        "  output_size: ${oc.env:SIZE}\n"
        "representations:\n  rgb: {type: color/rgb, dependencies: [], parameters: {}}\n")
    rgb = load_config(tmp_path / "plain.yaml").representations[0]
    assert (rgb.batch_size, rgb.compress, rgb.output_size) == (4, 6, (24, 32))


def test_config_format_forces_either_reading(tmp_path: Path, capsys: pytest.CaptureFixture):
    vre = CONFIGS / "examples__vre_streaming__cfg_rgb.yaml"
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['default_io_parameters'"):
        load_config(vre, config_format="vre-fast")
    ours = write(tmp_path / "ours.yaml", {"representations": {"rgb": {"type": "rgb"}}})
    assert build_graph(load_config(ours)).nodes[0].cfg.type == "rgb"
    with pytest.raises(ConfigError, match=r"representations\.rgb\.type: 'rgb' \(not a VRE 1\.18\.6 type"):
        load_config(ours, config_format="vre")
    assert main(["run", "x.mp4", "-c", str(vre), "--config-format", "vre-fast", "-o", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.startswith("vre-fast: error: ")


def test_convert_config_writes_the_mapped_config(tmp_path: Path, capsys: pytest.CaptureFixture):
    vre = CONFIGS / "examples__vre_streaming__cfg_depth.yaml"
    assert main(["convert-config", str(vre), "-o", str(tmp_path / "ours.yaml")]) == 0
    converted = load_config(tmp_path / "ours.yaml")
    direct = load_config(vre)
    assert [(r.name, r.type, r.parameters, r.output_formats, r.compress, r.output_dtype, r.device)
            for r in converted.representations] == \
        [(r.name, r.type, r.parameters, r.output_formats, r.compress, r.output_dtype, r.device)
         for r in direct.representations]
    assert main(["convert-config", str(CONFIGS / "test__vre_batched__cfg.yaml"), "-o", str(tmp_path / "x.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vre-fast: error: ") and err.count("\n") == 1 and "2 item(s)" in err
    assert not (tmp_path / "x.yaml").exists()
    mine = shutil.copy(vre, tmp_path / "mine.yaml")  # -o naming the VRE config itself, a folder, a missing folder
    for target, why in ((mine, "that is the VRE config itself"), (tmp_path, "a directory"),
                        (tmp_path / "no" / "x.yaml", "no folder")):
        assert main(["convert-config", str(mine), "-o", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"vre-fast: error: convert-config -o {target}: {why}") and err.count("\n") == 1
    assert Path(mine).read_bytes() == vre.read_bytes()


def test_dpt_definitions_recorded_before_its_output_choice_stay_equal():
    from vre_fast._config_loader import parse_config

    node = build_graph(parse_config({"representations": {"d": {"type": "depth_dpt"}}})).nodes[0]
    assert "output" not in node.representation.definition()["parameters"]
    inverse = np.array([[[0.5, 2.0]]], np.float32)
    assert np.array_equal(node.representation.postprocess((inverse,), None), inverse)


def test_the_table_maps_onto_registered_types_only():
    from vre_fast._registry import list_representations

    assert {e.ours for e in VRE_TYPES.values() if e.ours} <= set(list_representations())


# -- a directory VRE 1.18.6 wrote --------------------------------------------------------------------------------

def vre_cfg(tmp_path: Path, drop: tuple[str, ...] = ("edges_canny",), hsv_io: dict | None = None, **io: object) -> Path:
    cfg = yaml.safe_load((RESUME / "cfg.yaml").read_text())
    for name in drop:
        del cfg["representations"][name]
    cfg["default_io_parameters"].update(io)
    if hsv_io:
        cfg["representations"]["hsv"]["io_parameters"] = hsv_io
    return write(tmp_path / f"cfg{len(list(tmp_path.glob('cfg*')))}.yaml", cfg)


def stored(folder: Path, name: str, frame: int) -> np.ndarray:
    with np.load(folder / name / "npz" / f"{frame}.npz") as data:
        return data["arr_0"]


def test_a_vre_directory_resumes_computing_only_what_vre_has_not(tmp_path: Path):
    out = shutil.copytree(RESUME / "out", tmp_path / "out")
    before = {p: p.read_bytes() for p in out.rglob("*.npz")}
    clip = RESUME / "clip.avi"
    result = run(clip, load_config(vre_cfg(tmp_path)), out)
    assert result.computed_frames == 4 and result.already_done == {"rgb": 8, "hsv": 8}  # VRE did frames 0-7
    assert all(p.read_bytes() == data for p, data in before.items())  # VRE's files are left as they are
    assert run(clip, load_config(vre_cfg(tmp_path)), out).nothing_to_compute
    fresh = run(clip, load_config(vre_cfg(tmp_path)), tmp_path / "fresh").out_dir
    for frame in range(12):  # what vre-fast computes equals what VRE stored (rgb exactly, HSV to float32 rounding)
        assert np.array_equal(stored(out, "rgb", frame), stored(fresh, "rgb", frame))
        vre_hsv, ours = stored(out, "hsv", frame), stored(fresh, "hsv", frame)
        assert vre_hsv.dtype == ours.dtype == np.float32 and np.abs(vre_hsv - ours).max() < 1e-6
    info = dataset_info(out)  # the reader sees both tools' folders
    assert {name: (r["type"], r["complete"]) for name, r in info["representations"].items()} == {
        "rgb": ("rgb", 12), "hsv": ("hsv", 12), "edges_canny": ("external", 8)}
    assert main(["collage", str(out), "-o", str(tmp_path / "collage")]) == 0
    assert len(list((tmp_path / "collage").glob("*.png"))) == 8
    from vre_fast.reader import VREDataset

    data = VREDataset(out, ["hsv", "edges_canny"], missing="drop")
    assert data.frames == list(range(8))  # VRE's Canny has frames 0-7
    for position in (2, 7):  # HSV frames VRE computed, decoded by vre-fast's definition
        np.testing.assert_array_equal(data[position]["hsv"].numpy(), stored(out, "hsv", position))
    assert np.array_equal(VREDataset(out, ["hsv"])[10]["hsv"].numpy(), stored(fresh, "hsv", 10))  # vre-fast's
    assert main(["metadata", "rebuild", str(out), "-c", str(RESUME / "cfg.yaml")]) == 1  # edges_canny: refused


def test_frames_of_a_killed_vre_run_are_computed_again(tmp_path: Path):
    """VRE records a frame in .repr_metadata.json per batch, its run only when the run ends, and (with storer
    threads) may record a frame before its file is whole: neither kind of frame is adopted."""
    out = shutil.copytree(RESUME / "out", tmp_path / "out")
    cut = out / "rgb" / "npz" / "3.npz"
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])
    meta = json.loads((out / "hsv" / ".repr_metadata.json").read_text())
    for frame in (8, 9):  # a second VRE run, killed, that stored float16 (its record never written)
        meta["run_stats"][str(frame)] = {"duration": 0.01, "run_id": "KilledRun0", "formats": ["npz"]}
        np.savez_compressed(out / "hsv" / "npz" / f"{frame}.npz", stored(out, "hsv", 0).astype(np.float16))
    (out / "hsv" / ".repr_metadata.json").write_text(json.dumps(meta))
    result = run(RESUME / "clip.avi", load_config(vre_cfg(tmp_path)), out)
    assert result.already_done == {"rgb": 7, "hsv": 8}
    assert stored(out, "rgb", 3).shape == (48, 64, 3)
    assert {stored(out, "hsv", f).dtype for f in range(12)} == {np.dtype(np.float32)}


def test_vre_folders_of_another_video_are_refused_after_vre_fast_ran_there(tmp_path: Path, video: Path):
    """vre-fast ran first (its .source.json names `video`); VRE's folders beside it are from clip.avi."""
    out = shutil.copytree(RESUME / "out", tmp_path / "out")
    run(video, parse_config({"representations": {"edges2": {"type": "edges_canny"}}}), out,
        RunOptions(frames=(0, 2)))
    with pytest.raises(StoreError, match=r"VRE's run records name a video of shape \(12, 48, 64, 3\), this one is "
                                         r"\(24, 48, 64, 3\)"):
        run(video, load_config(vre_cfg(tmp_path)), out)
    assert not (out / "rgb" / ".metadata.json").exists()


def test_a_vre_directory_resized_by_vre_is_refused(tmp_path: Path):
    """VRE's resize is not vre-fast's (frames differ by a mean of 7 levels): a folder VRE stored at an output_size
    must not be resumed with vre-fast's resized frames beside VRE's."""
    out = shutil.copytree(RESUME / "out", tmp_path / "out")
    record = next((out / ".logs").glob("run_metadata-*.json"))
    meta = json.loads(record.read_text())
    for name in ("rgb", "hsv"):  # what VRE records and stores when its config says output_size: [24, 32]
        meta["data_writers"][name]["size"] = [24, 32]
        for path in (out / name / "npz").glob("*.npz"):
            np.savez(path, stored(out, name, int(path.stem))[:24, :32])
    record.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"'rgb': VRE resized it to output_size \[24, 32\] with its own interpolation"):
        run(RESUME / "clip.avi", load_config(vre_cfg(tmp_path, output_size=[24, 32])), out)
    assert not any(out.rglob(".metadata.json"))


def test_a_vre_directory_of_another_definition_is_refused(tmp_path: Path, video: Path):
    out = shutil.copytree(RESUME / "out", tmp_path / "out")
    clip = RESUME / "clip.avi"
    refusals = [
        (vre_cfg(tmp_path, drop=()), r"'edges_canny': vre-fast's 'edges_canny' output is not checked equal to what "
                                     r"VRE stores \(VRE stores float32 \(H, W, 1\)"),
        (vre_cfg(tmp_path, hsv_io={"output_dtype": "float16"}), r"'hsv': VRE stored it as float32, this config as float16"),
        (vre_cfg(tmp_path, output_size=[24, 32]), r"'rgb': VRE stored it at output_size None, this config at \[24, "
                                                  r"32\]; 'hsv': VRE stored"),
    ]
    for cfg, message in refusals:
        with pytest.raises(StoreError, match=r"was written by VRE 1\.18\.6 and cannot be resumed by this config: .*"
                                             + message):
            run(clip, load_config(cfg), out)
    with pytest.raises(StoreError, match=r"VRE's run records name a video of shape \(12, 48, 64, 3\), this one is "
                                         r"\(24, 48, 64, 3\)"):
        run(video, load_config(vre_cfg(tmp_path)), out)
    assert not any(out.rglob(".metadata.json"))  # nothing was recorded
