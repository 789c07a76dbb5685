"""SafeUAV / PHG-MAE-Distil segmenter (Marcu et al.): a small U-Net with a dilated bottleneck, in torch.

150k to 4.4M parameters by its filter count; the distilled real-time segmenter of the VRE paper. Written
for vre-fast from the architecture's description; module names follow the released checkpoints
(encoder.conv1..conv15, encoder.dilate1..6, decoder) so they load with weights_only=True.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["SafeUAV"]


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1, transposed: bool = False) -> nn.Sequential:
    layer = (nn.ConvTranspose2d(cin, cout, 3, stride, 1) if transposed else
             nn.Conv2d(cin, cout, 3, stride, dilation, dilation))
    return nn.Sequential(layer, nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.Dropout(0.0))


def _pad_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a` (upsampled) padded at the bottom/right to `b`'s size, then stacked on it."""
    return torch.cat([F.pad(a, (0, b.shape[-1] - a.shape[-1], 0, b.shape[-2] - a.shape[-2])), b], dim=1)


class Encoder(nn.Module):
    def __init__(self, d_in: int, nf: int):
        super().__init__()
        widths = [(d_in, nf, 1), (nf, nf, 1), (nf, nf, 2), (nf, 2 * nf, 1), (2 * nf, 2 * nf, 1), (2 * nf, 2 * nf, 2),
                  (2 * nf, 4 * nf, 1), (4 * nf, 4 * nf, 1), (4 * nf, 4 * nf, 2)]
        for i, (cin, cout, stride) in enumerate(widths, 1):
            setattr(self, f"conv{i}", _conv(cin, cout, stride))
        for i in range(1, 7):
            setattr(self, f"dilate{i}", _conv(4 * nf if i == 1 else 8 * nf, 8 * nf, dilation=2 ** (i - 1)))
        self.conv10_t = _conv(8 * nf, 4 * nf, 2, transposed=True)
        self.conv11 = _conv(8 * nf, 4 * nf)
        self.conv12_t = _conv(4 * nf, 2 * nf, 2, transposed=True)
        self.conv13 = _conv(4 * nf, nf)
        self.conv14_t = _conv(nf, nf, 2, transposed=True)
        self.conv15 = _conv(2 * nf, nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.conv1(x)
        y4 = self.conv4(self.conv3(self.conv2(y1)))
        y7 = self.conv7(self.conv6(self.conv5(y4)))
        y = self.dilate1(self.conv9(self.conv8(y7)))
        total = y
        for i in range(2, 7):
            y = getattr(self, f"dilate{i}")(y)
            total = total + y
        y = self.conv11(_pad_cat(self.conv10_t(total), y7))
        y = self.conv13(_pad_cat(self.conv12_t(y), y4))
        return self.conv15(_pad_cat(self.conv14_t(y), y1))


class SafeUAV(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_filters: int):
        super().__init__()
        self.encoder = Encoder(in_channels, num_filters)
        self.decoder = nn.Conv2d(num_filters, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
