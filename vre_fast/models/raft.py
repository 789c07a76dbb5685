"""RAFT (Teed & Deng, ECCV 2020): all-pairs correlation volumes and a recurrent flow update, in torch.

Written for vre-fast so torchvision's released checkpoints (`raft_large_*.pth`, `raft_small_*.pth`, BSD-3)
load strictly with weights_only=True: the module names follow torchvision's state dicts. Inference only,
and shaped for export: the two frames come in as one (B, 6, H, W) tensor, the iterations are unrolled,
no state is kept between calls, every reshape leaves the batch free, and only the last flow is upsampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["RAFT", "RaftConfig", "load_raft_checkpoint"]


@dataclass(frozen=True)
class RaftConfig:
    encoder_layers: tuple[int, ...]  # stem, layer1..3 widths, output width of the feature encoder
    context_layers: tuple[int, ...]
    bottleneck: bool  # BottleneckBlock (small) or ResidualBlock (large)
    context_norm: bool  # BatchNorm in the context encoder (large) or none (small)
    corr_levels: int
    corr_radius: int
    motion_corr_layers: tuple[int, ...]
    motion_flow_layers: tuple[int, int]
    motion_out: int
    hidden: int
    gru_kernels: tuple[tuple[int, int], ...]  # one ConvGRU per kernel
    flow_head_hidden: int
    convex_upsampling: bool  # learned 3x3 convex combination (large) or bilinear (small)

    @property
    def min_size(self) -> int:
        """Smallest frame side: the coarsest correlation level must keep 2 pixels at 1/8 resolution."""
        return 8 * 2 ** self.corr_levels


LARGE = RaftConfig((64, 64, 96, 128, 256), (64, 64, 96, 128, 256), False, True, 4, 4, (256, 192), (128, 64), 128,
                   128, ((1, 5), (5, 1)), 256, True)
SMALL = RaftConfig((32, 32, 64, 96, 128), (32, 32, 64, 96, 160), True, False, 4, 3, (96,), (64, 32), 82,
                   96, ((3, 3),), 128, False)


def _conv(cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, norm: type[nn.Module] | None = None,
          relu: bool = True) -> nn.Sequential:
    """conv (+ norm) (+ ReLU) as torchvision's Conv2dNormActivation, whose indices the checkpoints use."""
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k[0] // 2, k[1] // 2))]
    layers += [norm(cout)] if norm is not None else []
    layers += [nn.ReLU(inplace=True)] if relu else []
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: type[nn.Module] | None, stride: int):
        super().__init__()
        self.convnormrelu1 = _conv(cin, cout, 3, stride, norm)
        self.convnormrelu2 = _conv(cout, cout, 3, 1, norm)
        self.downsample = nn.Identity() if stride == 1 else _conv(cin, cout, 1, stride, norm, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x) + self.convnormrelu2(self.convnormrelu1(x)))


class BottleneckBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: type[nn.Module] | None, stride: int):
        super().__init__()
        self.convnormrelu1 = _conv(cin, cout // 4, 1, 1, norm)
        self.convnormrelu2 = _conv(cout // 4, cout // 4, 3, stride, norm)
        self.convnormrelu3 = _conv(cout // 4, cout, 1, 1, norm)
        self.downsample = nn.Identity() if stride == 1 else _conv(cin, cout, 1, stride, norm, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x) + self.convnormrelu3(self.convnormrelu2(self.convnormrelu1(x))))


class FeatureEncoder(nn.Module):
    """Image -> features at 1/8 resolution (strides 2, 1, 2, 2)."""

    def __init__(self, layers: tuple[int, ...], bottleneck: bool, norm: type[nn.Module] | None):
        super().__init__()
        block = BottleneckBlock if bottleneck else ResidualBlock
        self.convnormrelu = _conv(3, layers[0], 7, 2, norm)
        for i, stride in enumerate((1, 2, 2), start=1):
            cin, cout = layers[i - 1], layers[i]
            setattr(self, f"layer{i}", nn.Sequential(block(cin, cout, norm, stride), block(cout, cout, norm, 1)))
        self.conv = nn.Conv2d(layers[3], layers[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.layer3(self.layer2(self.layer1(self.convnormrelu(x)))))


class MotionEncoder(nn.Module):
    def __init__(self, corr_channels: int, corr_layers: tuple[int, ...], flow_layers: tuple[int, int], out: int):
        super().__init__()
        self.convcorr1 = _conv(corr_channels, corr_layers[0], 1)
        self.convcorr2 = _conv(corr_layers[0], corr_layers[1], 3) if len(corr_layers) == 2 else nn.Identity()
        self.convflow1 = _conv(2, flow_layers[0], 7)
        self.convflow2 = _conv(flow_layers[0], flow_layers[1], 3)
        self.conv = _conv(corr_layers[-1] + flow_layers[1], out - 2, 3)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        corr = self.convcorr2(self.convcorr1(corr))
        motion = self.conv(torch.cat([corr, self.convflow2(self.convflow1(flow))], 1))
        return torch.cat([motion, flow], 1)


class ConvGRU(nn.Module):
    def __init__(self, cin: int, hidden: int, kernel: tuple[int, int]):
        super().__init__()
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.convz = nn.Conv2d(hidden + cin, hidden, kernel, padding=padding)
        self.convr = nn.Conv2d(hidden + cin, hidden, kernel, padding=padding)
        self.convq = nn.Conv2d(hidden + cin, hidden, kernel, padding=padding)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], 1)
        z, r = torch.sigmoid(self.convz(hx)), torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q


class RecurrentBlock(nn.Module):
    def __init__(self, cin: int, hidden: int, kernels: tuple[tuple[int, int], ...]):
        super().__init__()
        self.grus = len(kernels)
        for i, kernel in enumerate(kernels, start=1):
            setattr(self, f"convgru{i}", ConvGRU(cin, hidden, kernel))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.grus + 1):
            h = getattr(self, f"convgru{i}")(h, x)
        return h


class FlowHead(nn.Module):
    def __init__(self, cin: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    def __init__(self, cfg: RaftConfig):
        super().__init__()
        corr_channels = cfg.corr_levels * (2 * cfg.corr_radius + 1) ** 2
        self.motion_encoder = MotionEncoder(corr_channels, cfg.motion_corr_layers, cfg.motion_flow_layers,
                                            cfg.motion_out)
        context = cfg.context_layers[-1] - cfg.hidden
        self.recurrent_block = RecurrentBlock(cfg.motion_out + context, cfg.hidden, cfg.gru_kernels)
        self.flow_head = FlowHead(cfg.hidden, cfg.flow_head_hidden)

    def forward(self, h: torch.Tensor, context: torch.Tensor, corr: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.recurrent_block(h, torch.cat([context, self.motion_encoder(flow, corr)], 1))
        return h, self.flow_head(h)


class MaskPredictor(nn.Module):
    """Weights of the 3x3 convex combination that upsamples the flow by 8 (paper, appendix B)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.convrelu = _conv(hidden, 256, 3)
        self.conv = nn.Conv2d(256, 8 * 8 * 9, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return 0.25 * self.conv(self.convrelu(h))


def _correlation_pyramid(fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Every pixel of frame 1 against every pixel of frame 2, as (B*h*w, 1, h, w) maps, pooled per level."""
    c, h, w = fmap1.shape[1:]
    corr = torch.matmul(fmap1.flatten(2).transpose(1, 2), fmap2.flatten(2)) / c ** 0.5
    pyramid = [corr.reshape(-1, 1, h, w)]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, 2))
    return pyramid


def _lookup(pyramid: list[torch.Tensor], coords: torch.Tensor, radius: int) -> torch.Tensor:
    """Correlations in a (2r+1)^2 window around `coords` (B, 2, h, w) on every level -> (B, L*(2r+1)^2, h, w).

    The window offsets pair the first meshgrid axis with x, as the released weights expect."""
    h, w = coords.shape[2:]
    side = 2 * radius + 1
    offsets = torch.linspace(-radius, radius, side, device=coords.device, dtype=coords.dtype)
    delta = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1).view(1, side, side, 2)
    centres = coords.permute(0, 2, 3, 1).reshape(-1, 1, 1, 2)
    features = []
    for level, corr in enumerate(pyramid):
        points = centres / 2 ** level + delta
        size = torch.tensor([corr.shape[3] - 1, corr.shape[2] - 1], device=coords.device, dtype=coords.dtype)
        sampled = F.grid_sample(corr, 2 * points / size - 1, mode="bilinear", align_corners=True)
        features.append(sampled.reshape(-1, h, w, side * side))
    return torch.cat(features, -1).permute(0, 3, 1, 2)


def _convex_upsample(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    h, w = flow.shape[2:]
    weights = torch.softmax(mask.reshape(-1, 1, 9, 8, 8, h, w), dim=2)
    padded = F.pad(8 * flow, (1, 1, 1, 1))
    neighbours = torch.stack([padded[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], 2)
    up = (weights * neighbours.reshape(-1, 2, 9, 1, 1, h, w)).sum(2)  # (B, 2, 8, 8, h, w)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(-1, 2, 8 * h, 8 * w)


class RAFT(nn.Module):
    """(B, 6, H, W): two frames scaled to [-1, 1], H and W multiples of 8 -> flow from the first to the
    second frame in pixels (B, 2, H, W)."""

    def __init__(self, cfg: RaftConfig, iterations: int = 12):
        super().__init__()
        self.cfg, self.iterations = cfg, iterations
        self.feature_encoder = FeatureEncoder(cfg.encoder_layers, cfg.bottleneck, nn.InstanceNorm2d)
        self.context_encoder = FeatureEncoder(cfg.context_layers, cfg.bottleneck,
                                              nn.BatchNorm2d if cfg.context_norm else None)
        self.update_block = UpdateBlock(cfg)
        self.mask_predictor = MaskPredictor(cfg.hidden) if cfg.convex_upsampling else None

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        image1, image2 = frames[:, :3], frames[:, 3:]
        fmap1, fmap2 = self.feature_encoder(torch.cat([image1, image2], 0)).chunk(2, 0)
        pyramid = _correlation_pyramid(fmap1, fmap2, self.cfg.corr_levels)
        hidden, context = self.context_encoder(image1).split(
            [self.cfg.hidden, self.cfg.context_layers[-1] - self.cfg.hidden], 1)
        hidden, context = torch.tanh(hidden), F.relu(context)
        h, w = fmap1.shape[2:]
        ys, xs = torch.meshgrid(torch.arange(h, device=frames.device), torch.arange(w, device=frames.device),
                                indexing="ij")
        grid = torch.stack([xs, ys]).to(frames.dtype).unsqueeze(0)
        flow = torch.zeros_like(fmap1[:, :2])
        for _ in range(self.iterations):
            corr = _lookup(pyramid, grid + flow, self.cfg.corr_radius)
            hidden, delta = self.update_block(hidden, context, corr, flow)
            flow = flow + delta
        if self.mask_predictor is None:
            return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)
        return _convex_upsample(flow, self.mask_predictor(hidden))


def load_raft_checkpoint(model: RAFT, path: Path) -> None:
    """A torchvision RAFT state dict (weights_only=True). The original princeton-vl checkpoints use other
    names: convert them with torchvision's port or load them into torchvision and save its state_dict."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).split("\n\t")[1:2] or [str(error)]
        raise ValueError(f"{path} is not a torchvision RAFT checkpoint of this size: {first[0]}") from None
