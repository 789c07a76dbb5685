"""Marigold depth (Ke et al., CVPR 2024; diffusers' UNet + VAE): affine-invariant depth in [0, 1] (0 near).

The depth expert of VRE's Dronescapes2 graph. The RGB latent and a depth latent started from noise go
through `steps` denoising steps and the VAE decodes the depth latent. Two schedulers:
- DDIM (`v1_0`, `v1_1`; the snapshot's own scheduler config: v1.1 uses trailing spacing, good for 1-4 steps);
- LCM (`lcm_v1_0`, VRE's `marigold-lcm-v1-0`, a latent-consistency distillation for 1-4 steps): each step
  predicts the clean latent, and every step but the last re-noises it with fresh noise. Its arithmetic is
  written out here per timestep (the constants come from diffusers' LCMScheduler), so the noise is an input
  and the loop a plain module; the tests check it against LCMScheduler.step.
All the noise (the initial latent and, for LCM, each step's) is part of the network input, seeded per run
and the same for every frame, so every backend computes the same function and the export is deterministic.

`ensemble_size` > 1 runs that many members with their own noise and combines them as Marigold does
(`ensemble_depth`): each member is aligned by a scale and a shift fitted jointly (BFGS, Marigold's cost), the
median is taken and rescaled to [0, 1]. `processing_resolution` (VRE's, Marigold's `processing_res`) runs the
network with the frame's longer side at that many pixels (rounded to a multiple of 64); the engine resizes
the map back to the output size. Weights: HuggingFace-format snapshots (unet/, vae/, scheduler/,
text_encoder/, tokenizer/) from the offline hub cache or `weights: PATH/unet/diffusion_pytorch_model.safetensors`.
Stored as float16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedParams, LearnedRepresentation

LATENT_SCALE = 0.18215
_HALF = (127.5, 127.5, 127.5)  # RGB to [-1, 1]
_LCM = {"lcm_v1_0", "lcm_test"}  # the variants run by the LCM scheduler
ALIGN_MAX_RES = 1024  # the ensemble's alignment is fitted on a copy at most this large (Marigold's default)


@dataclass(frozen=True)
class MarigoldParams(LearnedParams):
    variant: str = "v1_1"
    steps: int = 4  # VRE: denoising_steps
    seed: int = 0
    ensemble_size: int = 1
    processing_resolution: int | None = None  # the longer side the network runs at; None or 0: the frame's

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 50:
            raise ValueError(f"steps must be in 1..50, got {self.steps}")
        if not 1 <= self.ensemble_size <= 32:
            raise ValueError(f"ensemble_size must be in 1..32, got {self.ensemble_size}")
        if self.processing_resolution is not None and self.processing_resolution < 0:
            raise ValueError(f"processing_resolution must be 0 (the frame's) or positive, got "
                             f"{self.processing_resolution}")


def _snapshot(variant: str, repo: str) -> PretrainedCfg:
    return PretrainedCfg(tag=f"depth_marigold.{variant}", filename="unet/diffusion_pytorch_model.safetensors",
                         hf_repo=repo, multiple_of=64, mean=_HALF, std=_HALF,
                         how_to_get=f"a copy of the HuggingFace repo {repo} in the offline hub cache",
                         license="Apache-2.0")


def _tiny(variant: str) -> PretrainedCfg:
    return PretrainedCfg(tag=f"depth_marigold.{variant}", multiple_of=64, mean=_HALF, std=_HALF,
                         source="a tiny random configuration of the same architecture (tests)")


@register_representation("depth_marigold")
class DepthMarigold(LearnedRepresentation):
    Params = MarigoldParams
    output_kind = "depth"
    onnx_tolerance = 1e-4
    later_parameters = {**LearnedRepresentation.later_parameters, "ensemble_size": 1, "processing_resolution": None}
    default_cfgs = {
        "v1_1": _snapshot("v1_1", "prs-eth/marigold-depth-v1-1"),
        "v1_0": _snapshot("v1_0", "prs-eth/marigold-depth-v1-0"),
        "lcm_v1_0": _snapshot("lcm_v1_0", "prs-eth/marigold-depth-lcm-v1-0"),
        "test": _tiny("test"),
        "lcm_test": _tiny("lcm_test"),
    }

    @property
    def noises_per_member(self) -> int:
        """The initial latent, and for LCM the noise each step but the last adds."""
        return self.params.steps if self.params.variant in _LCM else 1

    def input_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        side = self.params.processing_resolution
        if not side:
            return super().input_size(frame_hw)
        scale = side / max(frame_hw)
        return super().input_size((round(frame_hw[0] * scale), round(frame_hw[1] * scale)))

    def network_input(self, batch: ComputeBatch) -> np.ndarray:
        """The RGB in [-1, 1] and every latent noise (upsampled x8 to the same grid), member by member:
        (B, 3 + 4 * ensemble_size * noises_per_member, H, W)."""
        rgb = self.model_input(batch.frames)
        b, _, h, w = rgb.shape
        count = self.params.ensemble_size * self.noises_per_member
        noise = np.random.default_rng(self.params.seed).standard_normal((count * 4, h // 8, w // 8)).astype(np.float32)
        noise = np.broadcast_to(noise.repeat(8, axis=1).repeat(8, axis=2), (b, count * 4, h, w))
        return np.concatenate([rgb, noise], axis=1)

    def build_model(self) -> Any:
        """The test variants: a tiny UNet and VAE of the same classes (the real ones are loaded whole)."""
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, LCMScheduler, UNet2DConditionModel

        unet = UNet2DConditionModel(sample_size=8, in_channels=8, out_channels=4, layers_per_block=1,
                                    block_out_channels=(32, 64),
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                    attention_head_dim=4, norm_num_groups=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 16, 16),
                            latent_channels=4, norm_num_groups=8, layers_per_block=1)
        if self.params.variant in _LCM:  # VRE's LCM configuration
            scheduler = LCMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction",
                                     set_alpha_to_one=False, clip_sample=False, steps_offset=1,
                                     original_inference_steps=50, timestep_scaling=10.0)
        else:
            scheduler = DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction",
                                      timestep_spacing="trailing", set_alpha_to_one=False, clip_sample=False)
        return _marigold(unet, vae, scheduler, torch.zeros(1, 2, 32), self.params.steps)

    def load_model(self) -> Any:
        """A real snapshot through diffusers' / transformers' own loaders, offline, from safetensors."""
        cfg = self.pretrained_cfg
        if not cfg.has_weights:
            return super().load_model()
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, LCMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        root = resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters").parents[1]
        for part in ("unet", "vae", "scheduler", "text_encoder", "tokenizer"):
            if not (root / part).is_dir():
                raise FileNotFoundError(f"{root / part} is missing: Marigold needs the whole snapshot (unet, vae, "
                                        f"scheduler, text_encoder, tokenizer)")
        load = {"local_files_only": True}
        tokenizer = CLIPTokenizer.from_pretrained(root, subfolder="tokenizer", **load)
        encoder = CLIPTextModel.from_pretrained(root, subfolder="text_encoder", use_safetensors=True, **load).eval()
        with torch.inference_mode():
            ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
            empty = encoder(ids.input_ids)[0]
        scheduler = LCMScheduler if self.params.variant in _LCM else DDIMScheduler
        return _marigold(UNet2DConditionModel.from_pretrained(root, subfolder="unet", use_safetensors=True, **load),
                         AutoencoderKL.from_pretrained(root, subfolder="vae", use_safetensors=True, **load),
                         scheduler.from_pretrained(root, subfolder="scheduler", **load), empty,
                         self.params.steps).eval()

    def load_weights(self, model: Any, path: Path) -> None:
        raise AssertionError("load_model loads Marigold snapshots")

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        members = np.clip((outputs[0] + 1) / 2, 0, 1)  # (B, ensemble_size, h, w)
        if members.shape[1] == 1:
            return members[:, 0]
        return np.stack([ensemble_depth(m) for m in members])

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.depth_to_image(decoded)


def ensemble_depth(members: np.ndarray, regularizer: float = 0.02, max_iter: int = 2, tol: float = 1e-3,
                   max_res: int = ALIGN_MAX_RES) -> np.ndarray:
    """Marigold's test-time ensembling of affine-invariant depth (E, H, W) -> (H, W) in [0, 1].

    Each member i gets a scale s_i and shift t_i, started at its own min-max normalisation and refined by
    BFGS (`max_iter` steps, scipy's numerical gradient) on Marigold's cost: the sum over member pairs of the
    RMS difference of the aligned maps, plus `regularizer` x how far the median's range is from [0, 1]. The
    fit runs on a nearest-neighbour copy at most `max_res` pixels a side. The aligned members' per-pixel
    median is then stretched to [0, 1]. The cost is evaluated in float32 torch with torch's median (of an even
    count, the lower middle value) as Marigold evaluates it: the solver's numerical gradient is rounding noise
    at float32, so other arithmetic (numpy's float64 or float32 sums) takes other steps and other scales (up to
    0.03 apart in the output; tests/test_learned_variants.py)."""
    import torch
    from scipy.optimize import minimize

    members = members.astype(np.float32)
    e = len(members)
    fit = members
    if max(members.shape[1:]) > max_res:
        scale = max_res / max(members.shape[1:])
        size = (int(members.shape[2] * scale), int(members.shape[1] * scale))
        fit = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST_EXACT) for m in members])
    depth = torch.from_numpy(fit)
    low, high = depth.reshape(e, -1).min(1).values, depth.reshape(e, -1).max(1).values
    s0 = 1 / (high - low).clamp(min=1e-6)
    start = torch.cat((s0, -s0 * low)).numpy().astype(np.float64)
    pairs = [(i, j) for i in range(e) for j in range(i + 1, e)]

    def align(maps: torch.Tensor, param: np.ndarray) -> torch.Tensor:
        scales, shifts = (torch.from_numpy(v).float().view(e, 1, 1) for v in np.split(param, 2))
        return maps * scales + shifts

    def cost(param: np.ndarray) -> float:
        aligned = align(depth, param)
        total = sum((aligned[i] - aligned[j]).pow(2).mean().sqrt().item() for i, j in pairs)
        median = aligned.median(0).values
        return total + regularizer * (median.min().abs().item() + (1 - median.max()).abs().item())

    with torch.inference_mode():
        param = minimize(cost, start, method="BFGS", tol=tol, options={"maxiter": max_iter, "disp": False}).x
        median = align(torch.from_numpy(members), param).median(0).values
        return ((median - median.min()) / (median.max() - median.min()).clamp(min=1e-6)).numpy()


def lcm_constants(scheduler: Any, steps: int) -> list[tuple[float, float, float, float, float, float]]:
    """LCMScheduler.step's arithmetic as constants per timestep (after `set_timesteps(steps)`): (p, q, c_skip,
    c_out, keep, renoise) with x0 = p * latent + q * prediction (by the prediction type), denoised = c_out * x0
    + c_skip * latent, and the next latent keep * denoised + renoise * noise (on the last step: denoised)."""
    cfg = scheduler.config
    if cfg.thresholding:
        raise ValueError("an LCM scheduler with dynamic thresholding is not supported")
    scheduler.set_timesteps(steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    alphas = scheduler.alphas_cumprod
    out = []
    for i, t in enumerate(timesteps):
        a = float(alphas[t])
        if cfg.prediction_type == "v_prediction":
            p, q = a ** 0.5, -((1 - a) ** 0.5)
        elif cfg.prediction_type == "epsilon":
            p, q = 1 / a ** 0.5, -((1 - a) / a) ** 0.5
        elif cfg.prediction_type == "sample":
            p, q = 0.0, 1.0
        else:
            raise ValueError(f"unknown LCM prediction type {cfg.prediction_type!r}")
        c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(t)
        a_next = 1.0 if i == len(timesteps) - 1 else float(alphas[timesteps[i + 1]])
        out.append((p, q, float(c_skip), float(c_out), a_next ** 0.5, (1 - a_next) ** 0.5))
    return out


def _marigold(unet: Any, vae: Any, scheduler: Any, empty_embedding: Any, steps: int) -> Any:
    """The denoising loop as one module (unrolled over the fixed timesteps): exportable to ONNX. The number of
    ensemble members is read from the input's channels."""
    import torch
    from diffusers import LCMScheduler

    lcm = lcm_constants(scheduler, steps) if isinstance(scheduler, LCMScheduler) else None
    if lcm is None:
        scheduler.set_timesteps(steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    noises = 1 if lcm is None else len(timesteps)
    clip = float(scheduler.config.clip_sample_range) if lcm is not None and scheduler.config.clip_sample else None

    class Marigold(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet, self.vae = unet, vae
            self.register_buffer("empty", empty_embedding)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(B, 3 + 4 * members * noises, H, W) -> (B, members, H, W) depth in [-1, 1] (unclipped)."""
            b, channels = x.shape[0], x.shape[1]
            members = (channels - 3) // (4 * noises)
            rgb = x[:, :3]
            noise = x[:, 3:, ::8, ::8].reshape(b * members, noises, 4, x.shape[2] // 8, x.shape[3] // 8)
            rgb_latent = self.vae.encode(rgb).latent_dist.mean * LATENT_SCALE
            rgb_latent = rgb_latent.repeat_interleave(members, dim=0)
            text = self.empty.expand(b * members, -1, -1)
            latent = noise[:, 0]
            for i, t in enumerate(timesteps):
                prediction = self.unet(torch.cat([rgb_latent, latent], 1), t, encoder_hidden_states=text).sample
                if lcm is None:
                    latent = scheduler.step(prediction, t, latent).prev_sample
                    continue
                p, q, c_skip, c_out, keep, renoise = lcm[i]
                x0 = p * latent + q * prediction
                if clip is not None:
                    x0 = x0.clamp(-clip, clip)
                latent = c_out * x0 + c_skip * latent
                if i < len(timesteps) - 1:
                    latent = keep * latent + renoise * noise[:, i + 1]
            depth = self.vae.decode(latent / LATENT_SCALE).sample.mean(1)
            return depth.reshape(b, members, depth.shape[1], depth.shape[2])

    return Marigold()
