"""Photometric normalisation of 48x48 faces into the standardised float tensors the model eats.

Training, evaluation and the video pipeline all go through `preprocess_faces`, so a face seen
live is normalised exactly like the faces the model was trained on: local contrast
equalisation (CLAHE) removes lighting differences between webcams, and fixed standardisation
constants give roughly zero-mean, unit-scale input without depending on any client's data
statistics.
"""

import cv2
import numpy as np

from emofl.common.data.face_dataset import IMAGE_SIZE

# Fixed standardisation constants: x_model = (x_01 - NORM_MEAN) / NORM_STD, where x_01 is the
# equalised face scaled to [0, 1]. Model inputs therefore lie in [-2, 2].
NORM_MEAN = 0.5
NORM_STD = 0.25

CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILE_GRID = (4, 4)


def preprocess_faces(images: np.ndarray) -> np.ndarray:
    """Equalise (CLAHE) and standardise uint8 faces (N, 48, 48) into float32 (N, 1, 48, 48)
    model input with values in [-2, 2] (NORM_MEAN/NORM_STD scaling)."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE,) * 2:
        raise ValueError(
            f"expected uint8 faces of shape (N, 48, 48), got {images.dtype} {images.shape}"
        )
    images = np.ascontiguousarray(images)  # OpenCV needs contiguous rows
    equaliser = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILE_GRID)
    equalised = np.empty_like(images)
    for i, face in enumerate(images):
        equalised[i] = equaliser.apply(face)
    # Standardisation acts pixel-wise on uint8 values: one 256-entry lookup table.
    table = (np.arange(256) / 255.0 - NORM_MEAN) / NORM_STD
    return table.astype(np.float32)[equalised][:, None]


def preprocess_face(image: np.ndarray) -> np.ndarray:
    """One face crop of any size, grayscale (H, W) or BGR/BGRA (H, W, 3|4) uint8, resized to
    48x48 and preprocessed like `preprocess_faces`; returns float32 (1, 48, 48), so stacking
    several gives a model batch."""
    if image.dtype != np.uint8 or image.size == 0:
        raise ValueError(f"expected a non-empty uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = np.ascontiguousarray(image[:, :, 0])
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(image, code)
    elif image.ndim != 2:
        raise ValueError(f"expected a grayscale or BGR image, got shape {image.shape}")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return preprocess_faces(image[None])[0]
