"""Small torch.nn models for the importer tests, each with the YAML stack a user would write for it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1))
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        x = self.stem(x)
        x = torch.relu(x + self.body(x))
        x = nn.functional.adaptive_avg_pool2d(self.pool(x), 1).flatten(1)
        return self.head(x)


RESIDUAL_YAML = """
input: [3, 33, 33]
layers:
  - {op: conv, name: c0, out: 16, kernel: 3, stride: 2, padding: 1, bias: false}
  - {op: batchnorm}
  - {op: relu, name: r0}
  - {op: conv, out: 16, kernel: 3, padding: 1}
  - {op: relu}
  - {op: conv, name: c2, out: 16, kernel: 3, padding: 1}
  - {op: add, from: [r0, c2]}
  - {op: relu}
  - {op: maxpool, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
  - {op: adaptive_avgpool, size: 1}
  - {op: flatten}
  - {op: linear, out: 10}
"""


class UNetSmall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Conv2d(16, 2, 3, padding=1)

    def forward(self, x: Any) -> Any:
        e = self.enc(x)
        return self.dec(torch.cat([self.up(self.down(e)), e], 1))


UNET_YAML = """
input: [1, 32, 32]
layers:
  - {op: conv, out: 8, kernel: 3, padding: 1}
  - {op: relu, name: e}
  - {op: maxpool, kernel: 2}
  - {op: conv, out: 16, kernel: 3, padding: 1}
  - {op: relu}
  - {op: deconv, name: up, out: 8, kernel: 2, stride: 2}
  - {op: concat, from: [up, e]}
  - {op: conv, out: 2, kernel: 3, padding: 1}
"""


class Upsampling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.up3 = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(4, 1, 3)

    def forward(self, x: Any) -> Any:
        return self.out(self.up3(self.up2(self.up1(self.conv(x)))))


UPSAMPLING_YAML = """
input: [3, 12, 10]
layers:
  - {op: conv, out: 4, kernel: 3}
  - {op: upsample, scale: 2, mode: linear, align_corners: false}
  - {op: upsample, scale: 2, mode: linear, align_corners: true}
  - {op: upsample, scale: 2, mode: nearest}
  - {op: conv, out: 1, kernel: 3}
"""


class Dilated1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2, 8, 3, dilation=1, padding=1), nn.Tanh(),
            nn.Conv1d(8, 8, 3, dilation=2, padding=2), nn.Sigmoid(),
            nn.Conv1d(8, 8, 3, dilation=4), nn.LeakyReLU(0.2),
            nn.AvgPool1d(3, 2, 1),
        )  # fmt: skip

    def forward(self, x: Any) -> Any:
        return self.net(x)


DILATED_YAML = """
input: [2, 50]
layers:
  - {op: conv, out: 8, kernel: 3, padding: 1}
  - {op: tanh}
  - {op: conv, out: 8, kernel: 3, dilation: 2, padding: 2}
  - {op: sigmoid}
  - {op: conv, out: 8, kernel: 3, dilation: 4}
  - {op: leaky_relu, negative_slope: 0.2}
  - {op: avgpool, kernel: 3, stride: 2, padding: 1}
"""


class DepthwiseSE(nn.Module):
    """A MobileNetV3 block: hardswish activations, a squeeze-and-excitation gate closed by hardsigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(4, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.act = nn.Hardswish()
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)
        self.gate = nn.Hardsigmoid()
        self.project = nn.Conv2d(16, 8, 1)

    def forward(self, x: Any) -> Any:
        x = self.act(self.dw(self.act(self.expand(x))))
        s = self.gate(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return self.project(x * s)


DEPTHWISE_YAML = """
input: [4, 15, 15]
layers:
  - {op: conv, out: 16, kernel: 1}
  - {op: hardswish}
  - {op: conv, out: 16, kernel: 3, stride: 2, padding: 1, groups: 16}
  - {op: hardswish, name: x}
  - {op: adaptive_avgpool, size: 1}
  - {op: conv, out: 4, kernel: 1}
  - {op: relu}
  - {op: conv, out: 16, kernel: 1}
  - {op: hardsigmoid, name: s}
  - {op: mul, from: [x, s]}
  - {op: conv, out: 8, kernel: 1}
"""


class GroupNormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(4, 8, eps=1e-4)
        self.out = nn.Conv2d(8, 4, 3)

    def forward(self, x: Any) -> Any:
        return self.out(torch.relu(self.norm(self.conv(x))))


GROUPNORM_YAML = """
input: [3, 12, 14]
layers:
  - {op: conv, out: 8, kernel: 3, padding: 1}
  - {op: groupnorm, groups: 4, eps: 1.0e-4}
  - {op: relu}
  - {op: conv, out: 4, kernel: 3}
"""


class LayerNorm2d(nn.Module):
    """ConvNeXt's LayerNorm over the channels of an N×C×H×W tensor: permute, nn.LayerNorm, permute back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: Any) -> Any:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtStem(nn.Module):
    """A ConvNeXt stem and block body: patchify conv, LayerNorm2d, 7×7 depthwise conv, LayerNorm2d, 1×1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.norm0 = LayerNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm1 = LayerNorm2d(16)
        self.pw = nn.Conv2d(16, 32, 1)

    def forward(self, x: Any) -> Any:
        return self.pw(self.norm1(self.dw(self.norm0(self.stem(x)))))


CONVNEXT_YAML = """
input: [3, 40, 36]
layers:
  - {op: conv, out: 16, kernel: 4, stride: 4}
  - {op: layernorm, eps: 1.0e-6}
  - {op: conv, out: 16, kernel: 7, padding: 3, groups: 16}
  - {op: layernorm, eps: 1.0e-6}
  - {op: conv, out: 32, kernel: 1}
"""


class PixelShuffleHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.PixelUnshuffle(2)
        self.conv = nn.Conv2d(12, 3 * 9, 3, padding=1, padding_mode="reflect")
        self.shuffle = nn.PixelShuffle(3)

    def forward(self, x: Any) -> Any:
        return self.shuffle(self.conv(self.down(x)))


PIXEL_YAML = """
input: [3, 8, 10]
layers:
  - {op: pixel_unshuffle, factor: 2}
  - {op: conv, out: 27, kernel: 3, padding: 1, padding_mode: reflect}
  - {op: pixel_shuffle, factor: 3}
"""

MODELS = {
    "residual": (Residual, (3, 33, 33), RESIDUAL_YAML),
    "unet": (UNetSmall, (1, 32, 32), UNET_YAML),
    "upsampling": (Upsampling, (3, 12, 10), UPSAMPLING_YAML),
    "dilated1d": (Dilated1d, (2, 50), DILATED_YAML),
    "depthwise_se": (DepthwiseSE, (4, 15, 15), DEPTHWISE_YAML),
    "pixel_shuffle": (PixelShuffleHead, (3, 8, 10), PIXEL_YAML),
    "groupnorm": (GroupNormNet, (3, 12, 14), GROUPNORM_YAML),
    "layernorm2d": (ConvNeXtStem, (3, 40, 36), CONVNEXT_YAML),
}
