"""DexiNed (Soria et al., WACV 2020): dense extreme-inception edge detection, in torch.

Written for vre-fast from the paper's design; module names follow the official checkpoints
(block_1, dblock_3.denselayer1, side_1, pre_dense_3, up_block_1.features, block_cat) so a released
state dict loads with weights_only=True. Returns the six side outputs and their fusion (logits).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DexiNed"]

_DECONV_PADDING = {1: 0, 2: 1, 3: 3, 4: 7}  # by up-scale: keeps every side output at the input size


class _DenseLayer(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.add_module("conv1", nn.Conv2d(cin, cout, 3, padding=2))
        self.add_module("norm1", nn.BatchNorm2d(cout))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv2d(cout, cout, 3))
        self.add_module("norm2", nn.BatchNorm2d(cout))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, skip = pair
        return 0.5 * (super().forward(torch.relu(x)) + skip), skip


class _DenseBlock(nn.Sequential):
    def __init__(self, layers: int, cin: int, cout: int):
        super().__init__(*[])
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(cin if i == 0 else cout, cout))


class _UpConv(nn.Module):
    def __init__(self, cin: int, up_scale: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(up_scale):
            cout = 1 if i == up_scale - 1 else 16
            layers += [nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True),
                       nn.ConvTranspose2d(cout, cout, 2 ** up_scale, stride=2, padding=_DECONV_PADDING[up_scale])]
            cin = cout
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _SingleConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, batch_norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride=stride)
        self.bn = nn.BatchNorm2d(cout)  # in the checkpoints even where unused
        self.batch_norm = batch_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.batch_norm else x


class _DoubleConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1, activation: bool = True):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, mid, 3, padding=1, stride=stride), nn.BatchNorm2d(mid)
        self.conv2, self.bn2 = nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(x) if self.activation else x


class DexiNed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block_1 = _DoubleConv(3, 32, 64, stride=2)
        self.block_2 = _DoubleConv(64, 128, 128, activation=False)
        self.dblock_3 = _DenseBlock(2, 128, 256)
        self.dblock_4 = _DenseBlock(3, 256, 512)
        self.dblock_5 = _DenseBlock(3, 512, 512)
        self.dblock_6 = _DenseBlock(3, 512, 256)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.side_1, self.side_2 = _SingleConv(64, 128, 2), _SingleConv(128, 256, 2)
        self.side_3, self.side_4 = _SingleConv(256, 512, 2), _SingleConv(512, 512, 1)
        self.side_5 = _SingleConv(512, 256, 1)  # in the checkpoints, unused by the forward pass
        self.pre_dense_3, self.pre_dense_4 = _SingleConv(128, 256, 1), _SingleConv(256, 512, 1)
        self.pre_dense_5, self.pre_dense_6 = _SingleConv(512, 512, 1), _SingleConv(512, 256, 1)
        self.up_block_1, self.up_block_2 = _UpConv(64, 1), _UpConv(128, 1)
        self.up_block_3, self.up_block_4 = _UpConv(256, 2), _UpConv(512, 3)
        self.up_block_5, self.up_block_6 = _UpConv(512, 4), _UpConv(256, 4)
        self.block_cat = _SingleConv(6, 1, 1, batch_norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) mean-subtracted, H and W multiples of 16 -> (B, 7, H, W) logits: 6 sides + fused."""
        b1 = self.block_1(x)
        b2 = self.block_2(b1)
        b2_down = self.maxpool(b2)
        b2_add = b2_down + self.side_1(b1)
        b3, _ = self.dblock_3((b2_add, self.pre_dense_3(b2_down)))
        b3_down = self.maxpool(b3)
        b3_add = b3_down + self.side_2(b2_add)
        b4, _ = self.dblock_4((b3_add, self.pre_dense_4(b3_down)))
        b4_down = self.maxpool(b4)
        b4_add = b4_down + self.side_3(b3_add)
        b5, _ = self.dblock_5((b4_add, self.pre_dense_5(b4_down)))
        b6, _ = self.dblock_6((b5 + self.side_4(b4_add), self.pre_dense_6(b5)))
        sides = [self.up_block_1(b1), self.up_block_2(b2), self.up_block_3(b3), self.up_block_4(b4),
                 self.up_block_5(b5), self.up_block_6(b6)]
        return torch.cat([*sides, self.block_cat(torch.cat(sides, 1))], 1)
