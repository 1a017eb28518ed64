"""Tests for the built-in synthetic face generator."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.data.synthetic import make_synthetic_faces


def test_shapes_dtypes_and_source() -> None:
    faces = make_synthetic_faces(30, seed=3)
    assert faces.images.shape == (30, 48, 48)
    assert faces.images.dtype == np.uint8
    assert faces.labels.shape == (30,)
    assert faces.labels.dtype == np.int64
    assert faces.source == "synthetic"
    assert faces.images.std() > 10  # drawn faces, not a blank canvas


def test_labels_are_balanced_and_shuffled() -> None:
    labels = make_synthetic_faces(100, seed=0).labels
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    assert counts.max() - counts.min() <= 1
    assert not np.array_equal(labels, np.arange(100) % NUM_CLASSES)


def test_a_single_face_works() -> None:
    assert len(make_synthetic_faces(1)) == 1


def test_same_seed_gives_identical_faces() -> None:
    first, second = make_synthetic_faces(20, seed=7), make_synthetic_faces(20, seed=7)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_different_seeds_give_different_faces() -> None:
    first, second = make_synthetic_faces(20, seed=7), make_synthetic_faces(20, seed=8)
    assert not np.array_equal(first.images, second.images)


@pytest.mark.parametrize("num_faces", [0, -5])
def test_invalid_count_raises(num_faces: int) -> None:
    with pytest.raises(ValueError, match="num_faces"):
        make_synthetic_faces(num_faces)


def _features(images: np.ndarray) -> torch.Tensor:
    """Pixels pooled to 24x24 (a little shift tolerance), standardised per image."""
    x = F.avg_pool2d(torch.tensor(images, dtype=torch.float32)[:, None], 2).flatten(1)
    return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6)


def test_expressions_are_learnable_by_a_linear_model() -> None:
    """Softmax regression on 1400 faces must beat chance (1/7) by far on 700 fresh ones."""
    torch.manual_seed(0)
    train, test = make_synthetic_faces(1400, seed=10), make_synthetic_faces(700, seed=11)
    x_train, y_train = _features(train.images), torch.tensor(train.labels)
    x_test, y_test = _features(test.images), torch.tensor(test.labels)
    weights = torch.zeros(x_train.shape[1], NUM_CLASSES, requires_grad=True)
    bias = torch.zeros(NUM_CLASSES, requires_grad=True)
    optimizer = torch.optim.Adam([weights, bias], lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        logits = x_train @ weights + bias
        loss = F.cross_entropy(logits, y_train) + 1e-3 * weights.square().sum()
        loss.backward()
        optimizer.step()
    accuracy = ((x_test @ weights + bias).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.40
