"""A VGG frame model of any per-layer channel counts: its shape as a record, and the model
built from one.

`EmotionNet(kind="vgg")` only offers widths w, 2w, 4w, 8w with GroupNorm of min(8, C) groups;
a pruned backbone keeps other counts (and fewer groups, see `pruning.py`). The record lists the
output channels and GroupNorm groups of the eight 3x3 convolutions and the feature size d, which
is enough to rebuild the layers before loading a state_dict.
"""

from torch import nn

from emofl.common.model.emotion_net import EmotionNet

CONVS_PER_STAGE = 2


def shape_of(model: EmotionNet) -> dict:
    """{"channels", "groups", "feature_dim"} of a VGG frame model, read from its layers."""
    norms = [m for m in model.backbone.stages if isinstance(m, nn.GroupNorm)]
    return {"channels": [n.num_channels for n in norms], "groups": [n.num_groups for n in norms],
            "feature_dim": model.backbone.feature_dim}


def vgg_stages(channels: list[int], groups: list[int]) -> nn.Sequential:
    """Conv-GroupNorm-ReLU layers of the given output `channels` and `groups`, a 2x2 max-pool
    after every second one: the layout of `VggBackbone.stages`, so state_dict keys match."""
    layers: list[nn.Module] = []
    previous = 1
    for index, (out, group) in enumerate(zip(channels, groups, strict=True)):
        layers += [nn.Conv2d(previous, out, 3, 1, 1, bias=False), nn.GroupNorm(group, out),
                   nn.ReLU()]
        if index % CONVS_PER_STAGE == CONVS_PER_STAGE - 1:
            layers.append(nn.MaxPool2d(2))
        previous = out
    return nn.Sequential(*layers)


def build_vgg(shape: dict) -> EmotionNet:
    """A fresh VGG frame model of `shape` (as `shape_of` returns it).

    It starts as the narrowest `EmotionNet` and has its stages and projection input replaced,
    so that it keeps the class (backbone, head, features) every caller of a frame model uses.
    """
    channels, groups = list(shape["channels"]), list(shape["groups"])
    model = EmotionNet(width=1, feature_dim=int(shape["feature_dim"]), kind="vgg")
    model.width = channels[0]
    model.backbone.stages = vgg_stages(channels, groups)
    model.backbone.projection[0] = nn.Conv2d(channels[-1], model.backbone.feature_dim, 1,
                                             bias=False)
    return model
