"""Local DP-SGD on large Poisson batches: the event spent is the event planned, a logical batch
is accumulated over physical chunks, and augmented copies of a face are clipped as one."""

import pytest
import torch
from opacus.optimizers import DPOptimizer

from emofl.client.federated import dp_training
from emofl.client.federated.dp_training import train_round
from emofl.common.data.federated_data import Faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.protocol.run_settings import RunSettings


@pytest.fixture
def faces() -> Faces:
    torch.manual_seed(0)
    return Faces(torch.randn(200, 1, 48, 48), torch.randint(0, 7, (200,)))


def _clipped_batch_sizes(monkeypatch) -> list[int]:
    sizes: list[int] = []
    clip = DPOptimizer.clip_and_accumulate

    def recording(self):
        sizes.append(len(self.grad_samples[0]))
        return clip(self)

    monkeypatch.setattr(DPOptimizer, "clip_and_accumulate", recording)
    return sizes


def test_the_ledger_records_exactly_the_planned_poisson_event(faces):
    settings = RunSettings(rounds=4, sample_rate=0.25, local_steps=3, client_optimizer="sgd",
                           learning_rate=0.1)
    ledger = PrivacyLedger()
    update = train_round(EmotionNet(width=8), faces, settings, ledger, seed=1)
    assert ledger.events == [update.plan]
    assert (update.plan.sample_rate, update.plan.steps) == (0.25, 3)
    assert ledger.epsilon(settings.delta) < settings.epsilon


def test_copies_of_a_face_are_clipped_once_and_chunks_make_one_logical_batch(faces, monkeypatch):
    sizes = _clipped_batch_sizes(monkeypatch)
    monkeypatch.setattr(dp_training, "MAX_PHYSICAL_BATCH", 32)
    settings = RunSettings(rounds=2, sample_rate=1.0, local_steps=1, augment_multiplicity=4,
                           client_optimizer="sgd", learning_rate=0.1)
    train_round(EmotionNet(width=8), faces, settings, PrivacyLedger(), seed=2)
    # q = 1: all 200 faces, 8 faces (32 inputs) per chunk, one clipped gradient per face
    assert sum(sizes) == 200 and max(sizes) == 8


def test_an_empty_poisson_sample_still_adds_noise(faces):
    settings = RunSettings(rounds=2, sample_rate=1e-6, local_steps=1, client_optimizer="sgd",
                           learning_rate=1.0)
    model = EmotionNet(width=8)
    update = train_round(model, faces, settings, PrivacyLedger(), seed=3)
    moved = sum(float((update.state_dict[k] - v).abs().sum())
                for k, v in model.state_dict().items() if v.is_floating_point())
    assert moved > 0


@pytest.mark.parametrize("trainable, moving", [
    ("head", ("head.",)),
    ("projection", ("head.", "backbone.projection.")),
    ("top", ("head.", "backbone.projection.", "backbone.blocks.5.")),
    ("all", ("",)),
])
def test_a_round_moves_exactly_the_trainable_part(faces, trainable, moving):
    settings = RunSettings(rounds=2, sample_rate=0.5, local_steps=1, client_optimizer="sgd",
                           learning_rate=0.5, trainable=trainable)
    model = EmotionNet(width=8)
    update = train_round(model, faces, settings, PrivacyLedger(), seed=4)
    moved = {k for k, v in model.state_dict().items()
             if not torch.equal(update.state_dict[k], v)}
    expected = {k for k in model.state_dict() if k.startswith(moving)}
    assert moved == expected
