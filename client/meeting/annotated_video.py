"""The optional annotated copy of the meeting (`--save-annotated`): every frame with each
participant's box, id and current emotion; excluded participants' faces blurred beyond
recognition and left unlabelled.

This is the only output of `emofl analyze` that holds pixels of the meeting, so it is written
only when asked for. When some participants are excluded, only what is positively known to be
a consenting participant's face is shown: the rest of every frame is blurred too. The tracker
knows an excluded face only once the detector has found it; before that (and after the
detector has lost it, wherever it moved meanwhile) its place is unknown, so blurring only the
excluded tracks' boxes would show it. Blurring everything but the consenting boxes leaves
nothing to leak, at the cost of a blurred background.
"""

from pathlib import Path

import cv2
import numpy as np

from emofl.common.data.classes import CLASSES

BLUR_CELLS = 4  # an excluded face is averaged down to BLUR_CELLS x BLUR_CELLS values
# With exclusions, the rest of the frame is averaged down to this many cells along its longer
# side: a face filling the whole height of a 4:3 frame keeps six cells of it.
BACKGROUND_CELLS = 8


class AnnotatedVideo:
    """Writes annotated frames to an MPEG-4 file of the source's size and frame rate.

    `consenting_only`: show only the boxes of the participants labelled in each frame, and
    blur everything else (used whenever some participant is excluded).
    """

    def __init__(self, path: Path, fps: float, width: int, height: int,
                 consenting_only: bool = False) -> None:
        self.path = path
        self.consenting_only = consenting_only
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                       (width, height))
        if not self._writer.isOpened():
            raise ValueError(f"cannot write the annotated video {path}")

    def write(self, image: np.ndarray, shown: dict[int, tuple[np.ndarray, np.ndarray]],
              hidden: list[np.ndarray]) -> None:
        """Write `image` with `shown` {participant: (box, probs)} labelled and the `hidden`
        boxes blurred (also where they overlap a shown box); with `consenting_only`, all but
        the shown boxes blurred. The frame passed in is left untouched."""
        if self.consenting_only:
            out = _blurred_except(image, [box for box, _ in shown.values()])
        else:
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


def _blurred_except(image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    """A copy of `image` averaged down to BACKGROUND_CELLS cells along its longer side and
    stretched back smoothly, with the pixels inside `boxes` left as they were."""
    height, width = image.shape[:2]
    cell = max(height, width) / BACKGROUND_CELLS
    cells = cv2.resize(image, (max(1, round(width / cell)), max(1, round(height / cell))),
                       interpolation=cv2.INTER_AREA)
    out = cv2.resize(cells, (width, height), interpolation=cv2.INTER_LINEAR)
    for box in boxes:
        x, y, w, h = (round(float(v)) for v in box)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return out
