"""The optional annotated copy of the meeting (`--save-annotated`): every frame with each
participant's box, id and current emotion; excluded participants' faces blurred beyond
recognition and left unlabelled.

This is the only output of `emofl analyze` that holds pixels of the meeting, so it is written
only when asked for.
"""

from pathlib import Path

import cv2
import numpy as np

from emofl.common.data.classes import CLASSES

BLUR_CELLS = 4  # an excluded face is averaged down to BLUR_CELLS x BLUR_CELLS values


class AnnotatedVideo:
    """Writes annotated frames to an MPEG-4 file of the source's size and frame rate."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self.path = path
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                       (width, height))
        if not self._writer.isOpened():
            raise ValueError(f"cannot write the annotated video {path}")

    def write(self, image: np.ndarray, shown: dict[int, tuple[np.ndarray, np.ndarray]],
              hidden: list[np.ndarray]) -> None:
        """Write `image` with `shown` {participant: (box, probs)} labelled and the `hidden`
        boxes blurred; the frame passed in is left untouched."""
        out = image.copy()
        for box in hidden:
            _blur(out, box)
        for participant, (box, probs) in shown.items():
            x, y, w, h = (round(float(v)) for v in box)
            cv2.rectangle(out, (x, y), (x + w, y + h), (0, 220, 0), 2)
            text = f"{participant}: {CLASSES[int(np.argmax(probs))]} {float(np.max(probs)):.2f}"
            cv2.putText(out, text, (x, max(12, y - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 220, 0), 1, cv2.LINE_AA)
        self._writer.write(out)

    def close(self) -> None:
        self._writer.release()


def _blur(image: np.ndarray, box: np.ndarray) -> None:
    """Blur a box padded by a quarter of its size on each side, in place: average it down to a
    few cells and stretch them back smoothly, which leaves nothing of the face to recognise."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, round(x - w / 4)), max(0, round(y - h / 4))
    x1, y1 = min(image.shape[1], round(x + w * 1.25)), min(image.shape[0], round(y + h * 1.25))
    if x1 <= x0 or y1 <= y0:
        return
    cells = cv2.resize(image[y0:y1, x0:x1], (BLUR_CELLS, BLUR_CELLS),
                       interpolation=cv2.INTER_AREA)
    image[y0:y1, x0:x1] = cv2.resize(cells, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
