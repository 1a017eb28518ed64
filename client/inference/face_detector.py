"""Frontal-face detection with OpenCV's Haar cascade on a downscaled grayscale frame.

Haar detection costs roughly in proportion to the pixels it scans (~80 ms for a 640x480 frame
with nine faces on this project's 2-core machine), so the pipeline detects on a copy shrunk to
`detect_width` pixels wide and scales the boxes back. Faces in a conferencing gallery stay large
enough after shrinking; `min_face` sets the smallest face searched for, in full-frame pixels
(the cascade cannot see faces under MIN_WINDOW pixels of the downscaled frame).
"""

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_CASCADE = "haarcascade_frontalface_alt2.xml"
MIN_WINDOW = 20  # the frontal cascades' own window size


@dataclass(frozen=True)
class ScaledFrame:
    """A grayscale frame at full size and shrunk for detection and tracking; `scale` is
    small size over full size."""

    gray: np.ndarray
    small: np.ndarray
    scale: float


def scaled_frame(image: np.ndarray, detect_width: int | None) -> ScaledFrame:
    """Grayscale the BGR frame and shrink it to `detect_width` pixels wide (never enlarged;
    None keeps the full size)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    width = gray.shape[1]
    if not detect_width or detect_width >= width:
        return ScaledFrame(gray, gray, 1.0)
    scale = detect_width / width
    size = (detect_width, max(1, round(gray.shape[0] * scale)))
    return ScaledFrame(gray, cv2.resize(gray, size, interpolation=cv2.INTER_AREA), scale)


class HaarFaceDetector:
    """Boxes (x, y, w, h) of frontal faces, in full-frame pixels, found on `frame.small`.

    `scale_factor` and `min_neighbors` are the cascade's usual knobs: a finer pyramid finds
    more faces at more cost; more neighbours mean fewer false faces and more missed ones.
    """

    def __init__(self, min_face: int = 64, scale_factor: float = 1.1, min_neighbors: int = 3,
                 cascade: str = DEFAULT_CASCADE) -> None:
        path = cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path}")
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, frame: ScaledFrame) -> np.ndarray:
        """Float boxes (N, 4) as x, y, w, h in full-frame pixels, largest first."""
        smallest = max(MIN_WINDOW, round(self.min_face * frame.scale))
        found = self._cascade.detectMultiScale(
            frame.small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(smallest, smallest))
        if len(found) == 0:
            return np.zeros((0, 4))
        boxes = np.asarray(found, dtype=np.float64) / frame.scale
        return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]
