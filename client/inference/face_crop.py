"""Cutting a detected face out of a frame as the 48x48 crop the frame model expects."""

import cv2
import numpy as np

from emofl.common.data.face_dataset import IMAGE_SIZE


def crop_face(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The face under box (x, y, w, h) of a full-size grayscale frame, as uint8 48x48; the
    part of a box outside the frame is filled by repeating the border."""
    x, y, w, h = (round(float(v)) for v in box)
    w, h = max(w, 1), max(h, 1)
    height, width = gray.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    crop = gray[y0:y1, x0:x1]
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        crop = cv2.copyMakeBorder(crop, y0 - y, y + h - y1, x0 - x, x + w - x1,
                                  cv2.BORDER_REPLICATE)
    return cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
