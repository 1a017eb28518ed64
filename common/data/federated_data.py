"""Which faces each participant trains on and which faces the server evaluates on.

Every client of a run derives its own partition from the same recipe (data spec, number of
clients, α, seed), so nothing but the recipe crosses the network. Loading and preprocessing
are cached per process: a simulation worker that plays several clients reads the data once.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from emofl.common.data.datasets import load_dataset
from emofl.common.data.face_dataset import FaceDataset
from emofl.common.data.partition import partition_indices, split_public
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.model.model_cards import read_card
from emofl.common.protocol.run_settings import RunSettings

HOLDOUT_FRACTION = 0.1
SYNTHETIC_VAL_SEED_OFFSET = 10_007


@dataclass(frozen=True)
class PublicSplit:
    """A seeded fraction of a training set treated as public, consented data held by the server."""

    data: str
    fraction: float
    seed: int

    def to_dict(self) -> dict:
        return {"data": self.data, "fraction": self.fraction, "seed": self.seed}


@dataclass(frozen=True)
class Faces:
    """Preprocessed faces ready for a model: float tensor (N, 1, 48, 48) and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def public_split_of(settings: RunSettings) -> PublicSplit | None:
    """The public split the initial model was pre-trained on, which no client may train on."""
    if not settings.init_model:
        return None
    split = read_card(settings.init_model).get("public_split")
    return PublicSplit(**split) if split else None


def to_faces(dataset: FaceDataset) -> Faces:
    images = torch.from_numpy(preprocess_faces(dataset.images))
    return Faces(images, torch.from_numpy(dataset.labels))


def same_data(a: str, b: str) -> bool:
    """Whether two data specs name the same data (paths compared after resolving)."""
    if "synthetic" in (a, b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()


@lru_cache(maxsize=2)
def _cached_dataset(data: str, synthetic_size: int, seed: int) -> FaceDataset:
    return load_dataset(data, synthetic_size=synthetic_size, seed=seed)


def _training_dataset(settings: RunSettings, num_clients: int) -> FaceDataset:
    """The whole training data set (synthetic: synthetic_size faces per client)."""
    synthetic = settings.data == "synthetic"
    size = settings.synthetic_size * num_clients if synthetic else 0
    return _cached_dataset(settings.data, size, settings.seed)


def _holdout_split(n: int, settings: RunSettings) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices) of the data itself when no val_data is given."""
    if settings.val_data or settings.data == "synthetic":
        return np.arange(n), np.arange(0)
    held_out, rest = split_public(n, HOLDOUT_FRACTION, settings.seed + 1)
    return rest, held_out


def training_indices(
    settings: RunSettings, num_clients: int, public: PublicSplit | None
) -> tuple[FaceDataset, np.ndarray]:
    """The data set and the indices the federation may train on (no public, no held-out faces)."""
    dataset = _training_dataset(settings, num_clients)
    train, _ = _holdout_split(len(dataset), settings)
    if public is not None and same_data(public.data, settings.data):
        public_idx, _ = split_public(len(dataset), public.fraction, public.seed)
        train = np.setdiff1d(train, public_idx)
    return dataset, train


@lru_cache(maxsize=16)
def client_faces(
    settings: RunSettings, partition_id: int, num_clients: int, public: PublicSplit | None
) -> Faces:
    """The preprocessed faces held by participant `partition_id` of `num_clients`."""
    dataset, train = training_indices(settings, num_clients, public)
    alpha = settings.alpha if settings.alpha > 0 else None
    parts = partition_indices(dataset.labels[train], num_clients, alpha, settings.seed)
    return to_faces(dataset.subset(train[parts[partition_id]]))


def validation_faces(settings: RunSettings) -> Faces:
    """The server's held-out set for centralized evaluation."""
    if settings.val_data:
        return to_faces(load_dataset(settings.val_data))
    if settings.data == "synthetic":
        size = max(350, settings.synthetic_size)
        return to_faces(load_dataset("synthetic", synthetic_size=size,
                                     seed=settings.seed + SYNTHETIC_VAL_SEED_OFFSET))
    dataset = _training_dataset(settings, settings.num_clients)
    _, held_out = _holdout_split(len(dataset), settings)
    return to_faces(dataset.subset(held_out))
