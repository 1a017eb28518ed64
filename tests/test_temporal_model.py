"""The temporal model: causality, streaming equals batch, EMA, sequences, shipped weights, DP."""

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator

from emofl.common.data.classes import CLASSES, NUM_CLASSES
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.model_cards import ModelError
from emofl.common.model.smoothers import EmaSmoother, ema_sequences
from emofl.common.model.temporal import TemporalModel, TemporalSmoother
from emofl.common.model.temporal_store import (
    SHIPPED_TEMPORAL_MODEL,
    load_temporal_model,
    save_temporal_model,
)
from emofl.simulations.training.expression_sequences import (
    SequenceBuilder,
    SequenceSettings,
    frame_probabilities,
)


def random_probs(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(NUM_CLASSES), shape).astype(np.float32)


@pytest.fixture()
def model() -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(hidden_size=8).eval()


def test_output_at_t_ignores_later_frames(model: TemporalModel) -> None:
    probs = torch.from_numpy(random_probs(2, 20))
    changed = probs.clone()
    changed[:, 12:] = torch.from_numpy(random_probs(2, 8, seed=1))
    before, after = model(probs), model(changed)
    assert before.shape == (2, 20, NUM_CLASSES)
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_streaming_equals_batch_forward(model: TemporalModel) -> None:
    probs = random_probs(1, 30)
    expected = torch.softmax(model(torch.from_numpy(probs)), -1)[0].detach().numpy()
    smoother = TemporalSmoother(model)
    streamed = np.concatenate([smoother.update_many([7], frame[None]) for frame in probs[0]])
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    np.testing.assert_allclose(streamed.sum(1), 1.0, atol=1e-5)


def test_batched_frame_equals_one_participant_at_a_time(model: TemporalModel) -> None:
    probs = random_probs(15, 3)  # 15 frames of 3 participants
    participants = [4, 0, 9]
    batched, single = TemporalSmoother(model), TemporalSmoother(model)
    for t, frame in enumerate(probs):
        if t == 10:  # a participant leaving and coming back starts afresh
            batched.forget(0)
            single.forget(0)
        many = batched.update_many(participants, frame)
        for row, participant in enumerate(participants):
            alone = single.update_many([participant], frame[row : row + 1])[0]
            np.testing.assert_allclose(many[row], alone, atol=1e-5)
    fresh = TemporalSmoother(model).update_many([0], probs[0, 1:2])[0]
    batched.forget(9)
    np.testing.assert_allclose(batched.update_many([9], probs[:1, 1])[0], fresh, atol=1e-5)


def test_update_many_rejects_bad_input(model: TemporalModel) -> None:
    smoother = TemporalSmoother(model)
    with pytest.raises(ValueError, match="shape"):
        smoother.update_many([1, 2], random_probs(3))
    with pytest.raises(ValueError, match="distinct"):
        smoother.update_many([1, 1], random_probs(2))
    assert smoother.update_many([], np.zeros((0, NUM_CLASSES))).shape == (0, NUM_CLASSES)


def test_ema_matches_hand_computed_values() -> None:
    ema = EmaSmoother(alpha=0.25)
    first = np.array([1, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    second = np.array([0, 1, 0, 0, 0, 0, 0], dtype=np.float32)
    np.testing.assert_allclose(ema.update_many([3], first[None]), [first])
    np.testing.assert_allclose(ema.update_many([3], second[None]), [[0.75, 0.25, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(ema.update_many([3], second[None]),
                               [[0.5625, 0.4375, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(ema.update_many([5, 3], np.stack([second, first])),
                               [second, [0.671875, 0.328125, 0, 0, 0, 0, 0]])
    ema.forget(3)
    np.testing.assert_allclose(ema.update_many([3], second[None]), [second])
    with pytest.raises(ValueError, match="alpha"):
        EmaSmoother(alpha=0.0)


def test_ema_sequences_equals_streaming_ema() -> None:
    probs = random_probs(2, 12)
    ema = EmaSmoother(alpha=0.3)
    streamed = np.stack([ema.update_many([0, 1], probs[:, t]) for t in range(12)], axis=1)
    np.testing.assert_allclose(ema_sequences(probs, 0.3), streamed, atol=1e-6)


def cached_faces() -> tuple[np.ndarray, np.ndarray]:
    """A probability cache (N, 2 views, 7) where every face is confidently its own class."""
    labels = np.repeat(np.arange(NUM_CLASSES), 5)
    cache = np.full((len(labels), 2, NUM_CLASSES), 0.01, dtype=np.float32)
    cache[np.arange(len(labels)), :, labels] = 0.94
    return cache, labels


def test_sequences_have_the_advertised_shape_and_labels() -> None:
    cache, labels = cached_faces()
    settings = SequenceSettings(fps=5, length=60, segment_seconds=(1, 2),
                                transition_frames=(0, 0), glitch_rate=0.0)
    probs, truth = SequenceBuilder(cache, labels, settings).sample(4, np.random.default_rng(0))
    assert probs.shape == (4, 60, NUM_CLASSES) and probs.dtype == np.float32
    assert truth.shape == (4, 60) and truth.dtype == np.int64
    # Without glitches or transitions every frame shows a face of its true class.
    assert (probs.argmax(-1) == truth).all()
    changes = np.flatnonzero(np.diff(truth[0])) + 1
    runs = np.diff(np.concatenate([[0], changes, [60]]))
    assert runs[:-1].min() >= 5 and runs.max() <= 10  # 1-2 s at 5 fps; the last one is cut
    assert len(np.unique(truth)) > 2


def test_transitions_blend_and_glitches_show_other_faces() -> None:
    cache, labels = cached_faces()
    settings = SequenceSettings(fps=5, length=200, transition_frames=(3, 3), glitch_rate=0.2)
    probs, truth = SequenceBuilder(cache, labels, settings).sample(3, np.random.default_rng(1))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    blended = probs.max(-1) < 0.9
    assert blended.any()
    assert 0.05 < (probs.argmax(-1) != truth)[~blended].mean() < 0.35


def test_settings_and_builder_reject_bad_values() -> None:
    with pytest.raises(ValueError):
        SequenceSettings(glitch_rate=1.0)
    with pytest.raises(ValueError):
        SequenceSettings(faces_per_segment=(0, 2))
    cache, labels = cached_faces()
    with pytest.raises(ValueError, match="two classes"):
        SequenceBuilder(cache[:5], labels[:5], SequenceSettings())


def test_frame_probabilities_view_zero_is_the_plain_face() -> None:
    torch.manual_seed(0)
    frame_model = EmotionNet(width=4, feature_dim=8)
    images = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probs = frame_probabilities(frame_model, images, views=3, seed=0)
    assert probs.shape == (3, 3, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs[:, 0], frame_probabilities(frame_model, images, views=1)[:, 0])
    assert not np.allclose(probs[:, 0], probs[:, 1])


def test_save_and_load_round_trip(model: TemporalModel, tmp_path) -> None:
    path = tmp_path / "temporal.pt"
    save_temporal_model(model, path, {"name": "test"})
    loaded, card = load_temporal_model(path)
    assert card["architecture"] == {"type": "DPLSTM", "hidden_size": 8} and card["name"] == "test"
    probs = torch.from_numpy(random_probs(1, 5))
    torch.testing.assert_close(loaded(probs), model(probs))
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        load_temporal_model(path)
    with pytest.raises(ModelError, match="not found"):
        load_temporal_model(tmp_path / "missing.pt")


def test_shipped_model_loads_with_a_consistent_card() -> None:
    model, card = load_temporal_model()
    assert SHIPPED_TEMPORAL_MODEL.stat().st_size < 100_000
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert card["classes_order"].endswith(", ".join(CLASSES))
    results = card["results"]
    per_frame = results["val_sequences"]["per_frame"]
    assert set(per_frame) == {"frame model", f"EMA (alpha={results['ema_alpha']})",
                              "temporal model"}
    # The target of issue 5: no worse than the frame model's still-image accuracy - 5 points.
    assert per_frame["temporal model"]["accuracy"] >= (
        results["frame_model_still_image_val_accuracy"] - 0.05)
    # The card records the command as it was run (before the module moved to training/).
    assert "emofl.simulations." in card["training"]["command"]
    assert "train_temporal" in card["training"]["command"]
    smoothed = TemporalSmoother(model).update_many([0, 1], random_probs(2))
    np.testing.assert_allclose(smoothed.sum(1), 1.0, atol=1e-5)


# Opacus warns about its non-secure RNG, torch about a backward hook on input-less modules.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_model_is_trainable_with_opacus_dp_sgd(model: TemporalModel) -> None:
    model.train()
    ModuleValidator.validate(model, strict=True)
    data = torch.utils.data.TensorDataset(torch.from_numpy(random_probs(8, 6)),
                                          torch.randint(0, NUM_CLASSES, (8, 6)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    private, optimizer, loader = PrivacyEngine().make_private(
        module=model, optimizer=optimizer, data_loader=torch.utils.data.DataLoader(data, 4),
        noise_multiplier=1.0, max_grad_norm=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    for probs, labels in loader:
        if len(labels) == 0:
            continue
        loss = torch.nn.functional.cross_entropy(private(probs).reshape(-1, NUM_CLASSES),
                                                 labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
