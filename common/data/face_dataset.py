"""The in-memory form every loader produces: 48x48 grayscale faces with FER2013 labels."""

from dataclasses import dataclass

import numpy as np

from emofl.common.errors import UserError

IMAGE_SIZE = 48


class DataError(UserError):
    """A user-supplied data set is missing or malformed; the message is one line naming the file."""


@dataclass(frozen=True)
class FaceDataset:
    """Faces as uint8 arrays (N, 48, 48) and int64 class indices in FER2013 order."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must be (N, 48, 48), got {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError("images and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> "FaceDataset":
        """The faces at `indices`, keeping the source name."""
        return FaceDataset(self.images[indices], self.labels[indices], self.source)
