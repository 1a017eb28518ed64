"""Frames made ready for tracking: decoded, grayscaled, downscaled and, on detection frames,
searched for faces — on worker threads ahead of the analyzer when there is more than one.

Why: decoding, downscaling and Haar detection depend on nothing but the frame itself, while
tracking, classification and the timeline depend on every frame before. So the first part runs
ahead on other threads (OpenCV and ONNX Runtime release the GIL while they work) and the
analyzer takes the prepared frames strictly in stream order: the output is the same with one
worker or several, only sooner. With `workers` 1 everything runs in the caller's thread.

A live source (a camera) is read by its own thread as fast as it delivers; when the analyzer
falls behind, the oldest frame waiting is dropped, so at most `LIVE_QUEUE` frames wait, one
more per worker is being prepared, and the delay from capture to output stays bounded
(docs/benchmarks.md, "capture-to-row latency").
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emofl.client.inference.face_detector import HaarFaceDetector, ScaledFrame, scaled_frame
from emofl.client.meeting.video_source import Frame, VideoSource

# Frames decoded ahead of the analyzer, per worker: enough to keep every thread busy
# through a detection frame, few enough that memory stays small (640x480 BGR is 0.9 MB).
AHEAD_PER_WORKER = 8
# Frames of a live source that may wait for the analyzer; older ones are dropped.
LIVE_QUEUE = 2


@dataclass(frozen=True)
class PreparedFrame:
    """A frame, its grayscale and downscaled copies, the faces detected on it (None: not a
    detection frame) and the seconds each preparing stage took on it."""

    frame: Frame
    scaled: ScaledFrame
    detections: np.ndarray | None
    seconds: dict[str, float]


@dataclass(frozen=True)
class FeedSettings:
    """How frames are prepared: the frame-rate limit, detection width and period, and how many
    threads share the work (1: all in the caller's thread)."""

    max_fps: float | None
    detect_width: int | None
    detect_every: int
    detect_all: bool
    workers: int = 1


DetectorFactory = Callable[[], HaarFaceDetector]


def prepared_frames(source: VideoSource, settings: FeedSettings,
                    new_detector: DetectorFactory) -> Iterator[PreparedFrame]:
    """The source's frames in stream order, each prepared for tracking.

    `new_detector` makes one detector per thread: OpenCV does not promise that a cascade may be
    shared between threads. Stopping the iteration early stops every worker.
    """
    frames = _captured(source, settings.max_fps)
    if settings.workers <= 1:
        detector = new_detector()
        for position, (frame, decode_s) in enumerate(frames):
            yield _prepare(frame, decode_s, position, settings, detector)
        return
    # A camera's frames are prepared one per worker ahead: a backlog would only be latency.
    ahead = settings.workers if source.live else AHEAD_PER_WORKER * settings.workers
    yield from _prepared_ahead(frames, settings, new_detector, ahead)


def _captured(source: VideoSource, max_fps: float | None) -> Iterator[tuple[Frame, float]]:
    """(frame, seconds spent decoding it): a file's frames as read, or a camera's through a
    reader thread that drops the oldest waiting frame when the analyzer falls behind."""
    if not source.live:
        frames = source.frames(max_fps)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            yield frame, time.perf_counter() - started
    else:
        yield from _live_frames(source, max_fps)


def _live_frames(source: VideoSource, max_fps: float | None) -> Iterator[tuple[Frame, float]]:
    waiting: queue.Queue = queue.Queue(maxsize=LIVE_QUEUE)
    stop = threading.Event()

    def read() -> None:
        frames = source.frames(max_fps)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                frame = next(frames, None)
                item = None if frame is None else (frame, time.perf_counter() - started)
                while True:
                    try:
                        waiting.put_nowait(item)
                        break
                    except queue.Full:
                        try:
                            waiting.get_nowait()  # drop the oldest frame, keep the newest
                        except queue.Empty:
                            pass
                if item is None:
                    return
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, raised there
            waiting.put((error, 0.0))

    reader = threading.Thread(target=read, name="emofl-camera", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is None:
                return
            if isinstance(item[0], BaseException):
                raise item[0]
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _prepared_ahead(frames: Iterator[tuple[Frame, float]], settings: FeedSettings,
                    new_detector: DetectorFactory, ahead: int) -> Iterator[PreparedFrame]:
    """Decode on a producer thread, prepare on `workers - 1` pool threads, yield in order
    (at most `ahead` frames decoded and not yet taken)."""
    local = threading.local()

    def work(frame: Frame, decode_s: float, position: int) -> PreparedFrame:
        if not hasattr(local, "detector"):
            local.detector = new_detector()
        return _prepare(frame, decode_s, position, settings, local.detector)

    ready: queue.Queue[Future | None] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand_over(item: Future | None) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce(pool: ThreadPoolExecutor) -> None:
        try:
            for position, (frame, decode_s) in enumerate(frames):
                if stop.is_set():
                    return
                hand_over(pool.submit(work, frame, decode_s, position))
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, raised there
            failed: Future = Future()
            failed.set_exception(error)
            hand_over(failed)
        finally:
            hand_over(None)
            frames.close()

    with ThreadPoolExecutor(max_workers=settings.workers - 1,
                            thread_name_prefix="emofl-prepare") as pool:
        producer = threading.Thread(target=produce, args=(pool,), name="emofl-decode",
                                    daemon=True)
        producer.start()
        try:
            while (future := ready.get()) is not None:
                yield future.result()
        finally:
            stop.set()
            while not ready.empty():
                pending = ready.get_nowait()
                if pending is not None:
                    pending.cancel()
            producer.join(timeout=5)


def _prepare(frame: Frame, decode_s: float, position: int, settings: FeedSettings,
             detector: HaarFaceDetector) -> PreparedFrame:
    started = time.perf_counter()
    scaled = scaled_frame(frame.image, settings.detect_width)
    scaled_at = time.perf_counter()
    detections = None
    if settings.detect_all or position % settings.detect_every == 0:
        detections = detector.detect(scaled)
    return PreparedFrame(frame, scaled, detections, {
        "decode": decode_s, "downscale": scaled_at - started,
        "detect": time.perf_counter() - scaled_at})
