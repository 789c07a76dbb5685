"""Marigold depth (Ke et al., CVPR 2024; diffusers' UNet + VAE): affine-invariant depth in [0, 1] (0 near).

The depth expert of VRE's Dronescapes2 graph. The RGB latent and a depth latent started from noise go
through `steps` DDIM steps (trailing spacing, as Marigold v1.1 recommends for 1-4 steps) and the VAE
decodes the depth latent. The noise is part of the network input (seeded per run, the same for every
frame), so every backend computes the same function and the export is deterministic. Weights: a
HuggingFace-format snapshot of prs-eth/marigold-depth-v1-1 (unet/, vae/, scheduler/, text_encoder/,
tokenizer/) from the offline hub cache or `weights: PATH/unet/diffusion_pytorch_model.safetensors`.
Stored as float16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from .._registry import register_representation
from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedParams, LearnedRepresentation

LATENT_SCALE = 0.18215
_HALF = (127.5, 127.5, 127.5)  # RGB to [-1, 1]


@dataclass(frozen=True)
class MarigoldParams(LearnedParams):
    variant: str = "v1_1"
    steps: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 50:
            raise ValueError(f"steps must be in 1..50, got {self.steps}")


@register_representation("depth_marigold")
class DepthMarigold(LearnedRepresentation):
    Params = MarigoldParams
    output_kind = "depth"
    onnx_tolerance = 1e-4
    default_cfgs = {
        "v1_1": PretrainedCfg(tag="depth_marigold.v1_1", filename="unet/diffusion_pytorch_model.safetensors",
                              hf_repo="prs-eth/marigold-depth-v1-1", multiple_of=64, mean=_HALF, std=_HALF,
                              how_to_get="a copy of the HuggingFace repo prs-eth/marigold-depth-v1-1 in the "
                                         "offline hub cache", license="Apache-2.0"),
        "test": PretrainedCfg(tag="depth_marigold.test", multiple_of=64, mean=_HALF, std=_HALF,
                              source="a tiny random configuration of the same architecture (tests)"),
    }

    def network_input(self, batch: ComputeBatch) -> np.ndarray:
        """The RGB in [-1, 1] and the initial depth-latent noise (upsampled x8 to the same grid): (B, 7, H, W)."""
        rgb = self.model_input(batch.frames)
        b, _, h, w = rgb.shape
        noise = np.random.default_rng(self.params.seed).standard_normal((4, h // 8, w // 8)).astype(np.float32)
        noise = np.broadcast_to(noise.repeat(8, axis=1).repeat(8, axis=2), (b, 4, h, w))
        return np.concatenate([rgb, noise], axis=1)

    def build_model(self) -> Any:
        """The test variant: a tiny UNet and VAE of the same classes (the real ones are loaded whole)."""
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

        unet = UNet2DConditionModel(sample_size=8, in_channels=8, out_channels=4, layers_per_block=1,
                                    block_out_channels=(32, 64),
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                    attention_head_dim=4, norm_num_groups=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 16, 16),
                            latent_channels=4, norm_num_groups=8, layers_per_block=1)
        scheduler = DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction",
                                  timestep_spacing="trailing", set_alpha_to_one=False, clip_sample=False)
        import torch

        return _marigold(unet, vae, scheduler, torch.zeros(1, 2, 32), self.params.steps)

    def load_model(self) -> Any:
        """A real snapshot through diffusers' / transformers' own loaders, offline, from safetensors."""
        cfg = self.pretrained_cfg
        if not cfg.has_weights:
            return super().load_model()
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
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
        return _marigold(UNet2DConditionModel.from_pretrained(root, subfolder="unet", use_safetensors=True, **load),
                         AutoencoderKL.from_pretrained(root, subfolder="vae", use_safetensors=True, **load),
                         DDIMScheduler.from_pretrained(root, subfolder="scheduler", **load), empty,
                         self.params.steps).eval()

    def load_weights(self, model: Any, path: Path) -> None:
        raise AssertionError("load_model loads Marigold snapshots")

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        return np.clip((outputs[0] + 1) / 2, 0, 1)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.depth_to_image(decoded)


def _marigold(unet: Any, vae: Any, scheduler: Any, empty_embedding: Any, steps: int) -> Any:
    """The denoising loop as one module (unrolled over the fixed timesteps): exportable to ONNX."""
    import torch

    scheduler.set_timesteps(steps)
    timesteps = [int(t) for t in scheduler.timesteps]

    class Marigold(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet, self.vae = unet, vae
            self.register_buffer("empty", empty_embedding)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rgb, latent = x[:, :3], x[:, 3:, ::8, ::8]
            rgb_latent = self.vae.encode(rgb).latent_dist.mean * LATENT_SCALE
            text = self.empty.expand(x.shape[0], -1, -1)
            for t in timesteps:
                prediction = self.unet(torch.cat([rgb_latent, latent], 1), t, encoder_hidden_states=text).sample
                latent = scheduler.step(prediction, t, latent).prev_sample
            return self.vae.decode(latent / LATENT_SCALE).sample.mean(1)

    return Marigold()
