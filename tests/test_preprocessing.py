"""Preprocessing gives standardised float faces deterministically; augmentation is seeded."""

import cv2
import numpy as np
import pytest
import torch

from emofl.common.data.augmentation import augment_batch
from emofl.common.data.preprocessing import (
    CLAHE_CLIP_LIMIT,
    CLAHE_TILE_GRID,
    NORM_MEAN,
    NORM_STD,
    preprocess_face,
    preprocess_faces,
)


def faces(count: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def test_preprocess_faces_shape_dtype_and_range():
    out = preprocess_faces(faces())
    assert out.shape == (8, 1, 48, 48) and out.dtype == np.float32
    low, high = (0 - NORM_MEAN) / NORM_STD, (1 - NORM_MEAN) / NORM_STD
    assert low <= out.min() and out.max() <= high


def test_preprocess_faces_is_deterministic_clahe_then_fixed_standardisation():
    images = faces()
    out = preprocess_faces(images)
    np.testing.assert_array_equal(out, preprocess_faces(images.copy()))
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILE_GRID)
    expected = np.stack([clahe.apply(face) for face in images]) / 255.0
    np.testing.assert_allclose(out[:, 0], (expected - NORM_MEAN) / NORM_STD, atol=1e-6)


def test_preprocess_faces_accepts_empty_and_rejects_bad_input():
    assert preprocess_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 1, 48, 48)
    with pytest.raises(ValueError):
        preprocess_faces(faces().astype(np.float32))
    with pytest.raises(ValueError):
        preprocess_faces(np.zeros((2, 32, 32), np.uint8))


def test_preprocess_face_matches_batch_path():
    gray = faces(1)[0]
    np.testing.assert_array_equal(preprocess_face(gray), preprocess_faces(gray[None])[0])


@pytest.mark.parametrize("shape", [(120, 90), (120, 90, 1), (120, 90, 3), (30, 30, 4)])
def test_preprocess_face_any_crop(shape):
    crop = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = preprocess_face(crop)
    assert out.shape == (1, 48, 48) and out.dtype == np.float32


def test_preprocess_face_converts_bgr_like_opencv():
    bgr = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(preprocess_face(bgr), preprocess_face(gray))


def batch(size: int = 16) -> torch.Tensor:
    return torch.from_numpy(preprocess_faces(faces(size)))


def test_augment_keeps_shape_and_dtype_and_leaves_input_alone():
    x = batch()
    before = x.clone()
    y = augment_batch(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, before)
    assert not torch.equal(x, y)


def test_augment_is_reproducible_from_generator_seed():
    x = batch()
    first = augment_batch(x, torch.Generator().manual_seed(3))
    second = augment_batch(x, torch.Generator().manual_seed(3))
    other = augment_batch(x, torch.Generator().manual_seed(4))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_augment_keeps_flat_faces_flat():
    # Border padding means a uniform face stays uniform: only brightness may shift it.
    x = torch.full((4, 1, 48, 48), 0.3)
    y = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.allclose(y, y.mean(dim=(1, 2, 3), keepdim=True), atol=1e-5)
    assert (y - 0.3).abs().max() <= 0.2 + 1e-5


def test_augment_rejects_wrong_shape():
    with pytest.raises(ValueError):
        augment_batch(torch.zeros(4, 48, 48), torch.Generator().manual_seed(0))
