"""VRE's learned variants and parameters: Marigold LCM, ensembles and processing resolution; the flow experts'
delta, backward flow and RIFE's uhd. Tiny random models of the real architectures, checked against references
written here (diffusers' LCMScheduler step by step, the network on swapped or pre-downscaled frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="learned representations need the [learned] extra (torch)")

from conftest import make_video, rep_of  # noqa: E402

from vre_fast import ConfigError, RunOptions, parse_config, run  # noqa: E402
from vre_fast.representation import ComputeBatch  # noqa: E402


def frames(n: int = 2, h: int = 64, w: int = 64) -> np.ndarray:
    from vre_fast.sources.synthetic import drifting_texture

    return np.stack(list(drifting_texture(n, h, w, step=5)))


def compute(rep, batch_frames: np.ndarray, next_frames: np.ndarray | None = None) -> np.ndarray:
    rep.setup("cpu")
    try:
        return rep.compute(ComputeBatch(list(range(len(batch_frames))), batch_frames, next_frames, {}))
    finally:
        rep.teardown()


# -- Marigold -------------------------------------------------------------------------------------------------
def test_marigold_lcm_equals_diffusers_lcm_scheduler_step_by_step(monkeypatch: pytest.MonkeyPatch):
    """Our unrolled LCM loop (constants per timestep, the noise an input) against a plain loop calling diffusers'
    LCMScheduler.step, which draws its re-noising noise with randn_tensor: handed the same noise here."""
    import diffusers.schedulers.scheduling_lcm as lcm
    import torch
    from diffusers import LCMScheduler

    rep = rep_of("depth_marigold", variant="lcm_test", steps=3, backend="torch")
    model = rep.load_model()
    x = rep.network_input(ComputeBatch([0], frames(1), None, {}))
    assert x.shape == (1, 3 + 4 * 3, 64, 64)  # RGB, the initial latent, the two re-noising steps' noise
    with torch.inference_mode():
        got = model(torch.from_numpy(x)).numpy()
    noise = torch.from_numpy(np.ascontiguousarray(x[:, 3:, ::8, ::8])).reshape(1, 3, 4, 8, 8)
    pending = [noise[:, 1], noise[:, 2]]
    monkeypatch.setattr(lcm, "randn_tensor", lambda shape, **kwargs: pending.pop(0))
    scheduler = LCMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction", set_alpha_to_one=False,
                             clip_sample=False, steps_offset=1, original_inference_steps=50, timestep_scaling=10.0)
    scheduler.set_timesteps(3)
    with torch.inference_mode():
        rgb_latent = model.vae.encode(torch.from_numpy(x[:, :3].copy())).latent_dist.mean * 0.18215
        latent = noise[:, 0]
        for t in scheduler.timesteps:
            v = model.unet(torch.cat([rgb_latent, latent], 1), t, encoder_hidden_states=model.empty).sample
            latent = scheduler.step(v, t, latent).prev_sample
        expected = model.vae.decode(latent / 0.18215).sample.mean(1).numpy()
    assert pending == [] and got.shape == (1, 1, 64, 64) and expected.std() > 0.05
    np.testing.assert_allclose(got[:, 0], expected, atol=1e-4)
    depth = rep.postprocess((got,), ComputeBatch([0], frames(1), None, {}))
    np.testing.assert_allclose(depth, np.clip((expected + 1) / 2, 0, 1), atol=1e-4)


def test_marigold_ensemble_aligns_members_and_takes_their_median():
    import torch

    from vre_fast.representations.depth_marigold import ensemble_depth

    rep = rep_of("depth_marigold", variant="lcm_test", steps=2, ensemble_size=3, backend="torch")
    model = rep.load_model()
    x = rep.network_input(ComputeBatch([0], frames(1), None, {}))
    assert x.shape[1] == 3 + 4 * 2 * 3
    with torch.inference_mode():
        members = model(torch.from_numpy(x)).numpy()
        for i in range(3):  # each member is the single-member network on its own noise
            own = np.concatenate([x[:, :3], x[:, 3 + 8 * i: 3 + 8 * (i + 1)]], axis=1)
            np.testing.assert_allclose(members[:, i], model(torch.from_numpy(own)).numpy()[:, 0], atol=1e-5)
    assert np.abs(members[0, 0] - members[0, 1]).max() > 1e-3  # different noise, different members
    got = rep.postprocess((members,), ComputeBatch([0], frames(1), None, {}))
    np.testing.assert_allclose(got[0], ensemble_depth(np.clip((members[0] + 1) / 2, 0, 1)), atol=1e-6)
    assert got.min() == 0 and got.max() == pytest.approx(1)

    base = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    unit = (base - base.min()) / np.ptp(base)
    affine = np.stack([base * 0.5 + 0.2, base * 0.9 + 0.05, base * 0.3 + 0.6, 1 - base, base * 0.7])
    np.testing.assert_allclose(ensemble_depth(affine), unit, atol=1e-5)  # aligned; the inverted one outvoted
    noisy = np.stack([np.clip(base + np.random.default_rng(i).normal(0, 0.05, base.shape), 0, 1) * s + t
                      for i, (s, t) in enumerate([(0.5, 0.2), (0.9, 0), (0.4, 0.5), (0.7, 0.1), (0.8, 0.1)])])
    single = (noisy[0] - noisy[0].min()) / np.ptp(noisy[0])
    assert np.abs(ensemble_depth(noisy) - unit).mean() < 0.7 * np.abs(single - unit).mean()


def marigold_ensemble_reference(members: np.ndarray) -> np.ndarray:
    """Marigold's ensemble_depth (diffusers' MarigoldDepthPipeline.ensemble_depth, affine-invariant, median) as
    it computes: float32 torch, torch.median (the lower middle of an even count), scipy's BFGS, 2 steps."""
    import torch
    from scipy.optimize import minimize

    depth = torch.from_numpy(members)
    e = len(depth)
    low, high = depth.reshape(e, -1).min(1).values, depth.reshape(e, -1).max(1).values
    s0 = 1 / (high - low).clamp(min=1e-6)
    start = torch.cat((s0, -s0 * low)).numpy().astype(np.float64)

    def align(param: np.ndarray) -> torch.Tensor:
        s, t = np.split(param, 2)
        return depth * torch.from_numpy(s).float().view(e, 1, 1) + torch.from_numpy(t).float().view(e, 1, 1)

    def cost(param: np.ndarray) -> float:
        aligned = align(param)
        total = sum((aligned[i] - aligned[j]).pow(2).mean().sqrt().item()
                    for i, j in torch.combinations(torch.arange(e)))
        median = aligned.median(0).values
        return total + 0.02 * (median.min().abs().item() + (1 - median.max()).abs().item())

    param = minimize(cost, start, method="BFGS", tol=1e-3, options={"maxiter": 2, "disp": False}).x
    median = align(param).median(0).values
    return ((median - median.min()) / (median.max() - median.min()).clamp(min=1e-6)).numpy()


def ensemble_members(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    base = rng.random((30, 40)).astype(np.float32)
    affine = [(0.5, 0.2), (0.9, 0), (0.4, 0.5), (0.7, 0.1), (0.8, 0.1)]
    return np.stack([np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1) * s + t
                     for s, t in affine[:n]]).astype(np.float32)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_marigold_ensemble_equals_marigolds_own(n: int):
    """Even counts too: np.median's mean of the two middle members gave maps 0.08 away from Marigold's, and a
    cost evaluated in other arithmetic steers the solver elsewhere (up to 0.03 on odd counts)."""
    from vre_fast.representations.depth_marigold import ensemble_depth

    members = ensemble_members(n)
    np.testing.assert_allclose(ensemble_depth(members), marigold_ensemble_reference(members), atol=1e-6)


@pytest.mark.slow
def test_marigold_ensemble_reference_is_diffusers():
    import torch
    from diffusers import MarigoldDepthPipeline

    for n in (2, 3, 4, 5):
        members = ensemble_members(n)
        theirs = MarigoldDepthPipeline.ensemble_depth(torch.from_numpy(members)[:, None])[0][0, 0].numpy()
        np.testing.assert_allclose(marigold_ensemble_reference(members), theirs, atol=1e-6)


def test_marigold_processing_resolution_runs_smaller_and_is_stored_at_the_frame_size(tmp_path: Path):
    rep = rep_of("depth_marigold", variant="lcm_test", steps=1, processing_resolution=768)
    assert rep.input_size((1080, 1920)) == (448, 768)  # the longer side at 768, each side a multiple of 64
    assert rep.input_size((2160, 3840)) == rep.input_size((1080, 1920))
    assert rep_of("depth_marigold", variant="lcm_test", processing_resolution=0).input_size((96, 128)) == (128, 128)
    assert rep_of("depth_marigold", variant="lcm_test").input_size((96, 128)) == (128, 128)
    video = make_video(tmp_path / "v.mp4", num_frames=2, height=96, width=128)
    cfg = parse_config({"representations": {"depth": {"type": "depth_marigold", "parameters": {
        "variant": "lcm_test", "steps": 1, "processing_resolution": 64, "backend": "torch"}}}})
    assert rep_of("depth_marigold", variant="lcm_test", processing_resolution=64).input_size((96, 128)) == (64, 64)
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 1), progress=False))
    with np.load(tmp_path / "out" / "depth" / "npz" / "0.npz") as f:
        assert f["arr_0"].shape == (96, 128) and f["arr_0"].dtype == np.float16 and f["arr_0"].std() > 0
    # the new parameters stay out of the definition at their defaults (outputs stored before still match)
    assert set(rep_of("depth_marigold", variant="lcm_test").definition()["parameters"]) == {
        "variant", "weights", "steps", "seed"}
    with pytest.raises(ConfigError, match="ensemble_size must be in 1..32, got 0"):
        rep_of("depth_marigold", variant="lcm_test", ensemble_size=0)


# -- flow: delta, backward, uhd ---------------------------------------------------------------------------------
@pytest.mark.parametrize("type_name, params", [("optical_flow_rife", {"variant": "random"}),
                                               ("optical_flow_raft", {"variant": "small_random", "iterations": 2})])
def test_backward_flow_is_the_flow_of_the_swapped_pair(type_name: str, params: dict):
    size = (64, 96) if type_name == "optical_flow_rife" else (128, 128)
    x = frames(3, *size)
    a, b = x[:2], x[1:]
    both = compute(rep_of(type_name, backend="torch", compute_backward_flow=True, **params), a, b)
    forward = compute(rep_of(type_name, backend="torch", **params), a, b)
    backward = compute(rep_of(type_name, backend="torch", **params), b, a)
    assert both.shape == (2, *size, 4) and both.dtype == np.float32 and np.abs(forward).max() > 0
    np.testing.assert_allclose(both[..., :2], forward, atol=1e-6)
    np.testing.assert_allclose(both[..., 2:], backward, atol=1e-6)
    if type_name == "optical_flow_rife":  # IFNet is symmetric: the swapped pair's flow is the forward negated
        np.testing.assert_allclose(backward, -forward, atol=1e-6)


def test_rife_uhd_is_downscale_flow_upscale():
    """uhd against a reference: the pair downscaled by 2, IFNet's flow without uhd, upscaled by 2 (values x2)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    x = frames(3, 128, 192)
    rep = rep_of("optical_flow_rife", variant="random", backend="torch", uhd=True)
    got = compute(rep, x[:2], x[1:])
    assert got.shape == (2, 128, 192, 2) and rep.input_size((2160, 3840)) == (2176, 3840)
    net = rep_of("optical_flow_rife", variant="random").load_model()
    pairs = torch.from_numpy(rep.network_input(ComputeBatch([0, 1], x[:2], x[1:], {})))
    with torch.inference_mode():
        half = net(F.interpolate(pairs, scale_factor=0.5, mode="bilinear", align_corners=False))
        flow = F.interpolate(half, scale_factor=2.0, mode="bilinear", align_corners=False) * 2
    expected = rep.postprocess((flow.numpy(),), ComputeBatch([0, 1], x[:2], x[1:], {}))
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, atol=1e-7)
    full = compute(rep_of("optical_flow_rife", variant="random", backend="torch"), x[:2], x[1:])
    assert np.abs(full - got).max() > 1e-5  # not the full-resolution flow


def test_flow_delta_pairs_each_frame_with_frame_t_plus_delta_clipped_to_the_video(tmp_path: Path):
    """Stored flow of frame t = the network on (t, clip(t + delta)): the last frames pair with the last one and,
    looking back, frame 0 with itself (VRE's clipping); 64x64 frames: no resizing between network and store."""
    from vre_fast.sources import VideoSource

    video = make_video(tmp_path / "v.mp4", num_frames=5, height=64, width=64)
    params = {delta: {"variant": "random", "delta": delta, "backend": "torch"} for delta in (2, -1)}
    cfg = parse_config({"batch_size": 2, "representations": {
        f"flow{delta}": {"type": "optical_flow_rife", "parameters": p} for delta, p in params.items()}})
    run(video, cfg, tmp_path / "out", RunOptions(frames=(0, 5), progress=False))
    with VideoSource(video) as source:
        decoded = np.stack([f for _, f in source.read(range(5))])
    for delta, p in params.items():
        partners = [min(max(t + delta, 0), 4) for t in range(5)]
        expected = compute(rep_of("optical_flow_rife", **p), decoded, decoded[partners])
        assert np.abs(expected[1]).max() > 0
        for t in range(5):
            with np.load(tmp_path / "out" / f"flow{delta}" / "npz" / f"{t}.npz") as f:
                np.testing.assert_allclose(f["arr_0"], expected[t], atol=1e-6)
        assert rep_of("optical_flow_rife", **p).definition()["parameters"] == {
            "variant": "random", "weights": None, "delta": delta}
    with pytest.raises(ConfigError, match="delta: must not be 0"):
        rep_of("optical_flow_rife", variant="random", delta=0)


# -- Mask2Former R50 (VRE's 49189528_1) -------------------------------------------------------------------------
FIXTURE = Path(__file__).parent / "data" / "m2f_r50_tiny.npz"


def vre_checkpoint(path: Path, fixture, **changes) -> Path:  # noqa: ANN001
    """The fixture's tiny model as VRE's convert.py saves a checkpoint: {"state_dict": ..., "cfg": JSON}."""
    import torch

    state = {k.removeprefix("state/"): torch.from_numpy(fixture[k].astype(np.float32))
             for k in fixture.files if k.startswith("state/")}
    torch.save({"state_dict": {**state, **changes}, "cfg": str(fixture["cfg"])}, path)
    return path


def test_mask2former_r50_from_vres_checkpoint_computes_what_vre_computes(tmp_path: Path):
    """VRE's own Mask2Former (tests/data/make_m2f_r50_tiny.py, run in VRE's venv) against the same tiny R50 model
    loaded through the r50_mapillary variant's real path: VRE-format checkpoint -> transformers' Mask2Former."""
    import torch

    with np.load(FIXTURE) as fixture:
        ckpt = vre_checkpoint(tmp_path / "49189528_1.ckpt", fixture)
        image, logits, masks, vre_map, vre_scores = (fixture[k] for k in (
            "image", "pred_logits", "pred_masks", "sem_seg_argmax", "sem_seg_every8"))
    rep = rep_of("semantic_mask2former", variant="r50_mapillary", weights=str(ckpt), backend="torch")
    net = rep.load_model().net
    assert net.config.backbone_config.model_type == "resnet" and net.config.num_labels == 65
    with torch.inference_mode():
        out = net(pixel_values=torch.from_numpy(rep.model_input(image[None])))
    np.testing.assert_allclose(out.class_queries_logits.numpy(), logits, atol=1e-4 * np.abs(logits).max())
    np.testing.assert_allclose(out.masks_queries_logits.numpy(), masks, atol=1e-4 * np.abs(masks).max())
    got = compute(rep, image[None])[0]
    assert got.shape == (64, 96) and len(np.unique(vre_map)) > 1 and rep.params.postprocess == "vre"
    # VRE's post-processing order (mask logits upsampled, sigmoid, class x mask product): VRE's class map
    agreement = (got == vre_map).mean()
    assert agreement >= 0.999, agreement
    # the other settings post-process the same network outputs (VRE's, equal to ours)
    batch = ComputeBatch([0], image[None], None, {})
    classes = torch.from_numpy(logits).softmax(-1)[..., :-1]
    probs = rep_of("semantic_mask2former", variant="r50_mapillary", probabilities=True).postprocess(
        (classes.numpy(), masks), batch)[0]
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    assert (probs.argmax(-1) == got).all()
    # VRE's disk_data_argmax: false scores, normalised over the classes (VRE stores them as they are)
    np.testing.assert_allclose(probs[::8, ::8], (vre_scores / vre_scores.sum(0)).transpose(1, 2, 0), atol=1e-6)
    # transformers' order (the product at a quarter of the size, then upsampled) differs near class borders
    # (6% of this fixture's pixels: its 16x24 masks are sharp and its segments a few pixels wide)
    quarter = torch.einsum("bqc,bqhw->bchw", classes, torch.from_numpy(masks).sigmoid()).numpy()
    other = rep_of("semantic_mask2former", variant="r50_mapillary", postprocess="transformers").postprocess(
        (quarter,), batch)[0]
    assert 0.9 <= (other == vre_map).mean() < 0.99
    assert rep.classes[27] == "Sky" and len(rep.classes) == 65


@pytest.mark.parametrize("probabilities", [False, True])
def test_mask2former_vre_order_in_bands_equals_torchs_upsample_then_product(probabilities: bool,
                                                                             monkeypatch: pytest.MonkeyPatch):
    """VRE's order as VRE writes it (F.interpolate of the mask logits, align_corners=False, sigmoid, einsum)
    against vre-fast's, at a size that is no multiple of the logits', in bands of 3 rows and (as for more queries
    than cv2.resize takes channels) 4 queries at a time."""
    import torch
    import torch.nn.functional as F

    from vre_fast.representations import semantic_mask2former

    rng = np.random.default_rng(1)
    classes = torch.from_numpy(rng.normal(0, 2, (2, 6, 5)).astype(np.float32)).softmax(-1)[..., :-1]
    masks = torch.from_numpy(rng.normal(0, 20, (2, 6, 9, 13)).astype(np.float32))
    up = F.interpolate(masks, size=(37, 50), mode="bilinear", align_corners=False).sigmoid()
    ref = torch.einsum("bqc,bqhw->bhwc", classes, up).numpy()
    monkeypatch.setattr(semantic_mask2former, "_BAND_ELEMENTS", 6 * 50 * 3)
    monkeypatch.setattr(semantic_mask2former, "_CV_CHANNELS", 4)
    rep = rep_of("semantic_mask2former", variant="test", postprocess="vre", probabilities=probabilities)
    got = rep._vre_postprocess(classes.numpy(), masks.numpy(), 37, 50)
    if probabilities:
        np.testing.assert_allclose(got, ref / ref.sum(-1, keepdims=True), atol=1e-5)  # float32 rounding
    else:
        assert got.dtype == np.uint8 and (got == ref.argmax(-1)).mean() >= 0.999


def test_mask2former_postprocess_default_and_definition():
    """VRE's order is r50_mapillary's default and recorded; transformers' (the only order before the parameter
    existed) stays out of the definition, so class maps stored then still match."""
    from vre_fast._builder import build_graph

    def parameters(**p: object) -> dict:
        return rep_of("semantic_mask2former", **p).definition()["parameters"]

    assert parameters(variant="r50_mapillary")["postprocess"] == "vre"
    assert "postprocess" not in parameters(variant="r50_mapillary", postprocess="transformers")
    assert "postprocess" not in parameters(variant="test")
    assert parameters(variant="swin_large_mapillary", postprocess="vre")["postprocess"] == "vre"
    with pytest.raises(ConfigError, match=r"m2f\.parameters: postprocess must be 'vre' or 'transformers', got 'x'"):
        build_graph(parse_config({"representations": {
            "m2f": {"type": "semantic_mask2former", "parameters": {"variant": "test", "postprocess": "x"}}}}))


def test_mask2former_r50_refuses_checkpoints_it_cannot_convert(tmp_path: Path):
    import torch

    with np.load(FIXTURE) as fixture:
        five = vre_checkpoint(tmp_path / "five.ckpt", fixture, **{
            "sem_seg_head.predictor.class_embed.weight": torch.zeros(6, 32),
            "sem_seg_head.predictor.class_embed.bias": torch.zeros(6)})
        extra = vre_checkpoint(tmp_path / "extra.ckpt", fixture, **{"backbone.res5.0.conv4.weight": torch.zeros(1)})
        deeper = vre_checkpoint(tmp_path / "deeper.ckpt", fixture, **{
            "sem_seg_head.pixel_decoder.transformer.encoder.layers.3.norm1.bias": torch.zeros(32)})
    torch.save({"state_dict": {"backbone.patch_embed.proj.weight": torch.zeros(1)}}, tmp_path / "swin.ckpt")
    import pickle

    with open(tmp_path / "model_final.pkl", "wb") as f:  # the model zoo's layout: numpy arrays in a plain pickle
        pickle.dump({"model": {"backbone.stem.conv1.weight": np.zeros((8, 3, 7, 7), np.float32)}}, f)
    cases = [(five, r"five\.ckpt: 5 classes; r50_mapillary has Mapillary Vistas' 65"),
             (extra, r"extra\.ckpt: 1 entries of no known Mask2Former-R50 layer, e.g. \['backbone\.res5\.0\.conv4"),
             (deeper, r"deeper\.ckpt: not the layout of the architecture its shapes describe \(\d+ weights missing"),
             (tmp_path / "swin.ckpt", r"swin\.ckpt: not a Mask2Former checkpoint with a ResNet backbone"),
             (tmp_path / "model_final.pkl", r"model_final\.pkl: holds more than tensors .* which is not read")]
    for path, message in cases:
        with pytest.raises(ValueError, match=message):
            rep_of("semantic_mask2former", variant="r50_mapillary", weights=str(path)).load_model()
    # without its weights the variant still names its classes (the Dronescapes2 graph maps them by name)
    from vre_fast._builder import build_graph

    graph = build_graph(parse_config({"representations": {
        "m2f": {"type": "semantic_mask2former", "parameters": {"variant": "r50_mapillary"}},
        "water": {"type": "binary_mask", "dependencies": ["m2f"], "parameters": {"classes": ["Water", "Sky"]}}}}))
    assert graph["water"].representation._ids == [31, 27]


@pytest.mark.slow
@pytest.mark.parametrize("type_name, params", [
    ("optical_flow_rife", {"variant": "random", "compute_backward_flow": True, "uhd": True, "delta": 2}),
    ("depth_marigold", {"variant": "lcm_test", "steps": 2, "ensemble_size": 2}),
    ("semantic_mask2former", {"variant": "r50_mapillary"})])
@pytest.mark.usefixtures("engine_cache")
def test_new_variants_export_to_onnx_and_agree_with_torch(type_name: str, params: dict, tmp_path: Path):
    if type_name == "semantic_mask2former":
        with np.load(FIXTURE) as fixture:
            params = {**params, "weights": str(vre_checkpoint(tmp_path / "49189528_1.ckpt", fixture))}
    x = frames(3, 64, 96)
    ref = compute(rep_of(type_name, backend="torch", **params), x[:2], x[1:])
    got = compute(rep_of(type_name, backend="onnxruntime", **params), x[:2], x[1:])
    rep = rep_of(type_name, **params)
    if type_name == "semantic_mask2former":
        assert (ref == got).mean() >= 0.999  # argmax of probabilities equal to 1e-4 of their range
    else:
        assert ref.std() > 0 and np.abs(ref - got).max() <= rep.onnx_tolerance * (rep.output_range or np.abs(ref).max())
