"""L1 structured pruning of the VGG backbone, rebuilt as a genuinely smaller dense model.

Each 3x3 convolution loses a `fraction` of its output channels, chosen by the L1 norm of their
filters. Channels go in whole GroupNorm groups: a kept group then normalises over exactly the
channels it did before, so the dense model computes what the original computes with the pruned
channels masked to zero (a zeroed group normalises to zero and feeds nothing to the next
layer), and fine-tuning starts from that function rather than from a perturbed one. The new
GroupNorm has as many groups as were kept, which divides the new channel count by
construction. The 1x1 projection keeps its d outputs (only its inputs shrink), so the head and
the encrypted head's layout are unchanged.
"""

import torch
from torch import nn

from emofl.common.model.emotion_net import EmotionNet
from emofl.simulations.compression.vgg_shape import build_vgg, shape_of


def _convs_and_norms(model: EmotionNet) -> list[tuple[nn.Conv2d, nn.GroupNorm]]:
    layers = list(model.backbone.stages)
    return [(conv, norm) for conv, norm in zip(layers, layers[1:], strict=False)
            if isinstance(conv, nn.Conv2d)]


def kept_channels(conv: nn.Conv2d, norm: nn.GroupNorm, fraction: float) -> torch.Tensor:
    """The sorted output channels of `conv` to keep: the groups of `norm` with the largest L1
    norm of their filters, all but round(`fraction` x groups) of them (at least one)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    size = conv.out_channels // norm.num_groups
    scores = conv.weight.detach().abs().sum(dim=(1, 2, 3)).view(norm.num_groups, size).sum(1)
    keep = max(1, norm.num_groups - round(fraction * norm.num_groups))
    groups = scores.topk(keep).indices.sort().values
    return (groups[:, None] * size + torch.arange(size)).flatten()


def channel_selection(model: EmotionNet, fraction: float) -> list[torch.Tensor]:
    """The kept output channels of each 3x3 convolution of a VGG frame model, in order."""
    return [kept_channels(conv, norm, fraction) for conv, norm in _convs_and_norms(model)]


@torch.no_grad()
def prune_vgg(model: EmotionNet, fraction: float) -> EmotionNet:
    """A dense copy of the VGG frame `model` with a `fraction` of each 3x3 convolution's output
    channels (in whole GroupNorm groups, lowest L1 norm first) removed, in eval mode."""
    kept = channel_selection(model, fraction)
    shape = shape_of(model)
    group_sizes = [c // g for c, g in zip(shape["channels"], shape["groups"], strict=True)]
    pruned = build_vgg({"channels": [len(k) for k in kept],
                        "groups": [len(k) // s for k, s in zip(kept, group_sizes, strict=True)],
                        "feature_dim": shape["feature_dim"]})
    inputs = torch.arange(1)
    pairs = zip(_convs_and_norms(model), _convs_and_norms(pruned), kept, strict=True)
    for (conv, norm), (new_conv, new_norm), outputs in pairs:
        new_conv.weight.copy_(conv.weight[outputs][:, inputs])
        new_norm.weight.copy_(norm.weight[outputs])
        new_norm.bias.copy_(norm.bias[outputs])
        new_norm.eps = norm.eps
        inputs = outputs
    projection, new_projection = model.backbone.projection, pruned.backbone.projection
    new_projection[0].weight.copy_(projection[0].weight[:, inputs])
    new_projection[1].load_state_dict(projection[1].state_dict())
    pruned.head.load_state_dict(model.head.state_dict())
    return pruned.eval()
