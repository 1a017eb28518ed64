"""Classifying face images on the device, with the head run locally or on an encrypted-head
service: the job behind `emofl classify`. The frame model may run on any runtime
(`runtime_models`); this module needs neither torch nor ONNX Runtime itself.

Images are read one at a time and their faces classified in batches, so a long list of files
streams results; an image that cannot be read is reported and skipped, never fatal.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from emofl.client.inference.face_crop import crop_face
from emofl.client.inference.face_detector import HaarFaceDetector, scaled_frame
from emofl.common.data.classes import CLASSES
from emofl.common.data.preprocessing import preprocess_face
from emofl.common.edge.sessions import softmax
from emofl.common.storage.input_files import check_input_file

# Faces per frame-model run and per encrypted request.
BATCH_FACES = 64
# Images wider than this are shrunk before Haar detection (boxes are scaled back).
DETECT_WIDTH = 640

# Preprocessed faces (N, 1, 48, 48) -> logits (N, 7): the frame model, or its backbone followed
# by a remote head.
LogitsFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FaceCrop:
    """One face to classify: its image file, model input (1, 48, 48), and box if detected."""

    file: str
    model_input: np.ndarray
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class ImageProblem:
    """An image that yielded no faces to classify, and why."""

    file: str
    reason: str
    fatal: bool


def read_gray(path: str) -> np.ndarray:
    """The image at `path` as grayscale uint8; a ValueError names the file otherwise (not
    found, not a regular file, not decodable)."""
    check_input_file(path, "image", ValueError)
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise ValueError(f"cannot decode image: {path}")
    return image


def _crops_of(path: str, detector: HaarFaceDetector | None) -> list[FaceCrop]:
    image = read_gray(path)
    if detector is None:
        return [FaceCrop(path, preprocess_face(image))]
    return [FaceCrop(path, preprocess_face(crop_face(image, box)),
                     tuple(int(v) for v in box.round()))
            for box in detector.detect(scaled_frame(image, DETECT_WIDTH))]


def face_crops(paths: Iterable[str], detect: bool) -> Iterator[FaceCrop | ImageProblem]:
    """Each image's faces (the whole image is one face unless `detect`), or its problem."""
    detector = HaarFaceDetector() if detect else None
    for path in paths:
        try:
            crops = _crops_of(path, detector)
        except ValueError as err:
            yield ImageProblem(path, str(err), fatal=True)
            continue
        if not crops:
            yield ImageProblem(path, f"no face found in {path}", fatal=False)
        yield from crops


def classify_batch(crops: list[FaceCrop], logits_of: LogitsFn) -> list[dict]:
    """One result per crop: file, label, class probabilities (and box when detected)."""
    probs = softmax(logits_of(np.stack([c.model_input for c in crops])))
    results = []
    for crop, p in zip(crops, probs, strict=True):
        result = {"file": crop.file, "label": CLASSES[int(p.argmax())],
                  "probs": {name: round(float(v), 6) for name, v in zip(CLASSES, p, strict=True)}}
        if crop.box is not None:
            result["box"] = list(crop.box)
        results.append(result)
    return results


def classify_files(paths: Iterable[str], logits_of: LogitsFn,
                   detect: bool) -> Iterator[dict | ImageProblem]:
    """Results for every face in `paths`, in batches of BATCH_FACES, and each problem image."""
    batch: list[FaceCrop] = []
    for item in face_crops(paths, detect):
        if isinstance(item, ImageProblem):
            yield item
            continue
        batch.append(item)
        if len(batch) == BATCH_FACES:
            yield from classify_batch(batch, logits_of)
            batch = []
    if batch:
        yield from classify_batch(batch, logits_of)
