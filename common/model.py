"""The frame model: a small depthwise-separable CNN backbone and a separate linear softmax head.

The backbone maps a 48x48 grayscale face to a feature vector x in R^d; the head is a single
linear layer W x + b over the 7 FER2013 classes. Keeping them apart lets a device run the
backbone locally while a server evaluates the head on CKKS-encrypted features. GroupNorm
instead of BatchNorm keeps every layer per-sample, which Opacus DP-SGD requires.
"""

import torch
from torch import nn

from .classes import NUM_CLASSES

FEATURE_DIM = 128
GROUPS = 8


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, channels), channels)


class SeparableBlock(nn.Sequential):
    """MobileNet-style block: 3x3 depthwise conv, then 1x1 pointwise conv, each normed."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            _norm(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            _norm(out_channels),
            nn.ReLU(),
        )


class Backbone(nn.Sequential):
    """48x48x1 face -> FEATURE_DIM features (global average pooled)."""

    def __init__(self, width: int = 32, feature_dim: int = FEATURE_DIM) -> None:
        w = width
        super().__init__(
            nn.Conv2d(1, w, 3, 1, 1, bias=False),
            _norm(w),
            nn.ReLU(),
            SeparableBlock(w, 2 * w, stride=2),  # 24x24
            SeparableBlock(2 * w, 2 * w),
            SeparableBlock(2 * w, 4 * w, stride=2),  # 12x12
            SeparableBlock(4 * w, 4 * w),
            SeparableBlock(4 * w, 8 * w, stride=2),  # 6x6
            SeparableBlock(8 * w, 8 * w),
            nn.Conv2d(8 * w, feature_dim, 1, bias=False),
            _norm(feature_dim),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.feature_dim = feature_dim


class EmotionNet(nn.Module):
    """Backbone followed by the linear softmax head; `forward` returns logits."""

    def __init__(self, width: int = 32, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.width = width
        self.backbone = Backbone(width, feature_dim)
        self.head = nn.Linear(feature_dim, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output: what a device encrypts for the remote head."""
        return self.backbone(x)
