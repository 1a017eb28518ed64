"""The frame model: shapes, a separable head, and acceptance by Opacus."""

import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.model.emotion_net import FEATURE_DIM, EmotionNet
from emofl.common.model.frame_store import load_model, save_model


def test_backbone_features_and_head_logits():
    model = EmotionNet(width=8)
    x = torch.randn(5, 1, 48, 48)
    features = model.features(x)
    assert features.shape == (5, FEATURE_DIM) and FEATURE_DIM <= 256
    assert torch.allclose(model(x), model.head(features))
    assert model.head.out_features == NUM_CLASSES


def test_opacus_accepts_the_model_and_makes_it_private():
    model = EmotionNet(width=8)
    assert ModuleValidator.validate(model, strict=True) == []
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 48, 48), torch.randint(0, 7, (16,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    private, optimizer, loader = PrivacyEngine().make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
        max_grad_norm=1.0)
    images, labels = next(iter(loader))
    torch.nn.functional.cross_entropy(private(images), labels).backward()
    assert all(p.grad_sample is not None for p in model.parameters())


def test_saved_model_loads_with_plain_torch_and_with_its_card(tmp_path):
    model = EmotionNet(width=8)
    path = tmp_path / "model.pt"
    save_model(model, path, {"note": "test"})
    state = torch.load(path, weights_only=True)
    assert set(state) == set(model.state_dict())
    loaded, card = load_model(path)
    assert card["note"] == "test" and card["architecture"]["width"] == 8
    x = torch.randn(2, 1, 48, 48)
    model.eval()
    assert torch.allclose(loaded(x), model(x))
