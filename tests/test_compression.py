"""The seed's compression methods: L1 structured pruning rebuilds a smaller dense VGG that
computes what the original computes with the pruned channels switched off, and the
distillation loss is the Hinton et al. mix of softened KL and cross-entropy."""

import torch
import torch.nn.functional as F
from torch import nn

from emofl.common.model.emotion_net import EmotionNet
from emofl.simulations.compression.distillation import distillation_loss
from emofl.simulations.compression.model_files import load_compressed, save_compressed
from emofl.simulations.compression.pruning import channel_selection, prune_vgg


def _vgg() -> EmotionNet:
    torch.manual_seed(0)
    return EmotionNet(width=8, kind="vgg").eval()


def test_pruning_nothing_keeps_the_function():
    model, faces = _vgg(), torch.rand(4, 1, 48, 48)
    pruned = prune_vgg(model, 0.0)
    torch.testing.assert_close(pruned(faces), model(faces))


def test_a_pruned_model_is_the_original_with_its_pruned_channels_switched_off(tmp_path):
    model, faces = _vgg(), torch.rand(4, 1, 48, 48)
    pruned = prune_vgg(model, 0.5)
    assert sum(p.numel() for p in pruned.parameters()) < sum(
        p.numel() for p in model.parameters())
    norms = [m for m in model.backbone.stages if isinstance(m, nn.GroupNorm)]
    with torch.no_grad():
        for norm, kept in zip(norms, channel_selection(model, 0.5), strict=True):
            off = torch.ones(norm.num_channels, dtype=torch.bool)
            off[kept] = False
            norm.weight[off] = 0
            norm.bias[off] = 0
    torch.testing.assert_close(pruned(faces), model(faces), atol=1e-5, rtol=1e-4)
    save_compressed(pruned, tmp_path / "pruned.pt", {"fraction": 0.5})
    loaded, card = load_compressed(tmp_path / "pruned.pt")
    torch.testing.assert_close(loaded(faces), pruned(faces))
    assert card == {"fraction": 0.5}


def test_distillation_loss_mixes_softened_kl_and_cross_entropy():
    torch.manual_seed(1)
    student, teacher = torch.randn(8, 7), torch.randn(8, 7)
    labels = torch.randint(0, 7, (8,))
    assert distillation_loss(teacher, teacher, labels, temperature=4, alpha=1.0).abs() < 1e-6
    hard = distillation_loss(student, teacher, labels, temperature=4, alpha=0.0)
    torch.testing.assert_close(hard, F.cross_entropy(student, labels))
    soft = distillation_loss(student, teacher, labels, temperature=4, alpha=1.0)
    assert soft > 0
