"""The frame model: a small CNN backbone and a separate linear softmax head.

The backbone maps a 48x48 grayscale face to a feature vector x in R^d; the head is a single
linear layer W x + b over the 7 FER2013 classes. Two backbones exist: "separable"
(MobileNet-style depthwise-separable blocks, the first shipped model) and "vgg" (four stages
of two full 3x3 convolutions, more accurate per millisecond on 48x48 faces). Keeping backbone
and head apart lets a device run the backbone locally while a server evaluates the head on
CKKS-encrypted features. GroupNorm instead of BatchNorm keeps every layer per-sample, which
Opacus DP-SGD requires; residual connections around the separable backbone's stride-1 blocks
keep that plain stack easy to train from scratch.

The feature vector comes from the last feature map either by global average pooling or by a
global depthwise convolution (MobileFaceNet, Chen et al. 2018): one learned weight per channel
and position. A face's parts sit at fixed places in an aligned crop, and averaging over
positions throws that away: from a random start an average-pooled backbone needs 100-150
clean steps to leave chance on synthetic faces, a depthwise-pooled one about 20
(docs/benchmarks.md §9).
"""

import torch
from torch import nn

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.protocol.choices import MODEL_KINDS, POOL_OF_OLDER_FILES, POOLS

FEATURE_DIM = 128
GROUPS = 8


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, channels), channels)


def _pool(pool: str, channels: int, map_size: int) -> list[nn.Module]:
    """(N, C, s, s) feature map -> (N, C) features, by `pool` (one of POOLS)."""
    if pool not in POOLS:
        raise ValueError(f"unknown pooling {pool!r}; use one of {sorted(POOLS)}")
    if pool == "average":
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return [nn.Conv2d(channels, channels, map_size, groups=channels, bias=False), nn.Flatten()]


class SeparableBlock(nn.Module):
    """MobileNet-style block: 3x3 depthwise conv, then 1x1 pointwise conv, each normed.

    When the block keeps the shape (stride 1, same width) its input is added to its output.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            _norm(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            _norm(out_channels),
            nn.ReLU(),
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class Backbone(nn.Module):
    """48x48x1 face -> `feature_dim` features: stem, six separable blocks, 1x1 projection, pool."""

    MAP_SIZE = 6  # the last feature map is 6x6

    def __init__(self, width: int = 16, feature_dim: int = FEATURE_DIM,
                 pool: str = POOL_OF_OLDER_FILES) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 1, 1, bias=False), _norm(w), nn.ReLU())
        self.blocks = nn.Sequential(
            SeparableBlock(w, 2 * w, stride=2),  # 24x24
            SeparableBlock(2 * w, 2 * w),
            SeparableBlock(2 * w, 4 * w, stride=2),  # 12x12
            SeparableBlock(4 * w, 4 * w),
            SeparableBlock(4 * w, 8 * w, stride=2),  # 6x6
            SeparableBlock(8 * w, 8 * w),
        )
        self.projection = nn.Sequential(
            nn.Conv2d(8 * w, feature_dim, 1, bias=False), _norm(feature_dim), nn.ReLU()
        )
        self.pool = nn.Sequential(*_pool(pool, feature_dim, self.MAP_SIZE))
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.projection(self.blocks(self.stem(x))))

    def top(self) -> list[nn.Module]:
        """The layers nearest the head: the last block and the projection."""
        return [self.blocks[-1], self.projection]


def _conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False), _norm(out_channels),
            nn.ReLU()]


class VggBackbone(nn.Module):
    """48x48x1 face -> `feature_dim` features: four stages of two 3x3 convs and a 2x2 max-pool
    (widths w, 2w, 4w, 8w), a 1x1 projection, pooling and dropout."""

    MAP_SIZE = 3  # the last feature map is 3x3

    def __init__(self, width: int = 16, feature_dim: int = FEATURE_DIM,
                 pool: str = POOL_OF_OLDER_FILES, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for stage in range(4):
            out = width * 2**stage
            layers += [*_conv(channels, out), *_conv(out, out), nn.MaxPool2d(2)]
            channels = out
        self.stages = nn.Sequential(*layers)  # 48 -> 24 -> 12 -> 6 -> 3
        self.projection = nn.Sequential(
            nn.Conv2d(channels, feature_dim, 1, bias=False), _norm(feature_dim), nn.ReLU())
        self.pool = nn.Sequential(*_pool(pool, feature_dim, self.MAP_SIZE), nn.Dropout(dropout))
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.projection(self.stages(x)))

    def top(self) -> list[nn.Module]:
        """The layers nearest the head: the last stage and the projection."""
        return [self.stages[-7:], self.projection]


BACKBONES = {"separable": Backbone, "vgg": VggBackbone}
assert tuple(BACKBONES) == MODEL_KINDS, "one backbone per kind the CLI offers"


class EmotionNet(nn.Module):
    """Backbone followed by the linear softmax head; `forward` returns logits."""

    def __init__(self, width: int = 16, feature_dim: int = FEATURE_DIM,
                 kind: str = "separable", pool: str = POOL_OF_OLDER_FILES) -> None:
        super().__init__()
        if kind not in BACKBONES:
            raise ValueError(f"unknown backbone {kind!r}; use one of {sorted(BACKBONES)}")
        self.width, self.kind, self.pool = width, kind, pool
        self.backbone = BACKBONES[kind](width, feature_dim, pool)
        self.head = nn.Linear(feature_dim, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output: what a device encrypts for the remote head."""
        return self.backbone(x)
