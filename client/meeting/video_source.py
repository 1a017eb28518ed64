"""Frames from a recorded video or a camera, at a chosen frame rate, with clear errors.

`open_source` validates the input before anything else happens: a missing file, a file OpenCV
cannot decode, a camera that does not open and a stream without a single frame each raise one
error with a one-line message. `VideoSource.frames` then yields the frames to process; frames
skipped by the frame-rate limit are only grabbed (decoded, never converted to BGR), which is
the cheapest way OpenCV offers to move past them. A stream that stops early (a truncated file,
an unplugged camera) simply ends the iteration, so callers keep what they computed.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Silence FFmpeg's own console messages ("moov atom not found", decoder warnings): errors are
# reported by us, in one line. OpenCV reads this when it first touches FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emofl.common.errors import UserError  # noqa: E402

# Frame rate assumed when a file does not declare a usable one.
FALLBACK_FPS = 30.0


class VideoSourceError(UserError):
    """The video or camera cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class Frame:
    """One frame to process: its index in the stream, its time in seconds, BGR pixels, and
    when it was read (`time.monotonic()`; for a camera, its capture)."""

    index: int
    time_s: float
    image: np.ndarray
    read_at: float = 0.0


class VideoSource:
    """An opened capture (file or camera) whose first frame has already been read.

    `native_fps` is the stream's own rate; `frame_count` the number of frames a file declares
    (None for a camera, and only an estimate for some containers). `paced` plays a file as a
    camera delivers it: each frame no sooner than its time, and live (`live` is then True).
    """

    def __init__(self, capture: cv2.VideoCapture, first: np.ndarray, name: str,
                 live: bool, paced: bool = False) -> None:
        self._capture = capture
        self._first: np.ndarray | None = first
        self.name = name
        self.live = live or paced
        self.paced = paced
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.native_fps = float(fps) if fps and np.isfinite(fps) and 1 <= fps <= 1000 else (
            FALLBACK_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
        self.frame_count: int | None = count if count > 0 else None
        self.height, self.width = first.shape[:2]
        self.frames_read = 0  # frames the stream has delivered so far (processed or skipped)

    def frames(self, max_fps: float | None = None) -> Iterator[Frame]:
        """Yield frames, at most `max_fps` per second of stream time (all frames when None).

        A file's time is its frame index over its native rate; a camera's is wall-clock time
        since the first frame. Frames between two processed ones are grabbed and dropped.
        """
        period = 1.0 / max_fps if max_fps else 0.0
        started = time.monotonic()
        next_due = 0.0
        index = 0
        while True:
            if self.paced:  # a recording played as a camera would deliver it
                time.sleep(max(0.0, started + index / self.native_fps - time.monotonic()))
            time_s = time.monotonic() - started if self.live else index / self.native_fps
            if time_s + 1e-9 < next_due:  # tolerance: keep a file's frames evenly spaced
                if not self._skip():
                    return
                self.frames_read = index + 1
            else:
                image = self._read()
                if image is None:
                    return
                self.frames_read = index + 1
                yield Frame(index, time_s, image, time.monotonic())
                next_due = time_s + period if self.live else next_due + period
            index += 1

    def _read(self) -> np.ndarray | None:
        """The next frame's BGR pixels, or None at the end of the stream."""
        if self._first is not None:
            image, self._first = self._first, None
            return image
        ok, image = self._capture.read()
        return image if ok and image is not None else None

    def _skip(self) -> bool:
        """Move past the next frame without converting it; False at the end of the stream."""
        if self._first is not None:
            self._first = None
            return True
        return self._capture.grab()

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(video: str | None = None, camera: int | None = None,
                realtime: bool = False) -> VideoSource:
    """Open a video file or a camera by index and read its first frame; raise
    FileNotFoundError or VideoSourceError (both one-line) when that is impossible.
    `realtime` plays the file at its own frame rate as if it were a camera."""
    if (video is None) == (camera is None):
        raise ValueError("give either a video file or a camera index")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    if camera is not None:
        capture, name = cv2.VideoCapture(camera), f"camera {camera}"
        if not capture.isOpened():
            raise VideoSourceError(f"cannot open camera {camera}")
    else:
        path = Path(video)
        name = str(path)
        if not path.exists():
            raise FileNotFoundError(f"video not found: {path}")
        if not path.is_file():
            raise VideoSourceError(f"not a video file: {path}")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(f"cannot read video {path}: OpenCV cannot decode it (not a "
                                   "video, damaged, or a container without frames)")
    ok, first = capture.read()
    if not ok or first is None or first.size == 0:
        capture.release()
        raise VideoSourceError(f"no frames in video {name}" if camera is None
                               else f"camera {camera} opened but gave no frame")
    return VideoSource(capture, first, name, live=camera is not None,
                       paced=realtime and camera is None)
