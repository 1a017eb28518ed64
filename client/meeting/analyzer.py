"""The meeting-analysis pipeline behind `emofl analyze`: video in; per-participant emotion,
engagement and stability out.

Per processed frame: decode -> grayscale and downscale -> Haar detection (every
`detect_every` frames) -> tracking (ids, boxes between detections) -> for each participant due
an analysis step: crop 48x48, classify (CNN only where the crop changed) -> temporal model ->
analytics and one timeline row per participant. The first three stages depend on the frame
alone and run ahead on worker threads (`frame_feed`); the rest run in order in the caller's.

Faces are classified and the temporal model advanced at `analysis_fps` per participant (the
rate the temporal model was trained at), not at the video's frame rate; rows of frames in
between carry the participant's latest smoothed distribution. Participants in `exclude` are
tracked (so their faces can be blurred in the annotated video) but never classified, and appear
in no other output (`annotated_video` says how the video hides them). Each stage's time is
measured, so a run reports where its time went.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from emofl.client.inference.face_crop import crop_face
from emofl.client.inference.face_detector import HaarFaceDetector
from emofl.client.meeting.analytics import Alert, MeetingAnalytics
from emofl.client.meeting.annotated_video import AnnotatedVideo
from emofl.client.meeting.crop_classifier import AdaptiveFaceClassifier
from emofl.client.meeting.face_tracker import FaceTracker, Track
from emofl.client.meeting.frame_feed import FeedSettings, PreparedFrame, prepared_frames
from emofl.client.meeting.report import TimelineWriter
from emofl.client.meeting.video_source import Frame, VideoSource
from emofl.common.data.classes import NUM_CLASSES
from emofl.common.model.smoothers import Smoother

STAGES = ("decode", "downscale", "detect", "track", "classify", "temporal", "output")
# Threads by default: one decodes, one downscales and detects, the caller does the rest.
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class AnalyzerSettings:
    """Pipeline knobs. `max_fps` limits the frames processed per second of video (None: all);
    `analysis_fps` how often each face is classified and smoothed (0: every processed frame;
    None: not chosen yet, `run_analysis` takes the temporal model's rate);
    `detect_width` the detection frame's width (0 or None: full size); `min_face` the smallest
    face looked for, in full-frame pixels; `hold_seconds` how long a participant whose face is
    neither detected nor matched stays reported (`FaceTracker`); `tracking` False
    reports a face only on frames where it is detected (the naive pipeline, for comparison);
    `workers` the threads sharing the work (`frame_feed`; 1: one thread, the same output)."""

    max_fps: float | None = None
    analysis_fps: float | None = None
    detect_width: int | None = 320
    detect_every: int = 10
    min_face: int = 64
    min_neighbors: int = 3
    hold_seconds: float = 6.0
    tracking: bool = True
    exclude: frozenset[int] = frozenset()
    workers: int = DEFAULT_WORKERS


class StageTimer:
    """Wall time spent per stage, summed over a run."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def add(self, seconds: dict[str, float]) -> None:
        """Charge time measured elsewhere (on a worker thread) to its stages."""
        for name, value in seconds.items():
            self.seconds[name] += value


@dataclass
class RunStats:
    """What a run did: frames processed, the last one's time, detection passes, whether it was
    interrupted (Ctrl-C), seconds per stage, faces classified by the CNN and answered from
    the cache, every participant id tracked (excluded ones too) and, for a camera, each
    frame's delay from capture to its timeline rows."""

    frames: int = 0
    last_time_s: float = 0.0
    detections: int = 0
    interrupted: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    faces_classified: int = 0
    faces_reused: int = 0
    tracked_ids: set[int] = field(default_factory=set)
    capture_to_row_s: list[float] = field(default_factory=list)


class MeetingAnalyzer:
    """Runs the pipeline over a source, feeding analytics, the timeline and the annotated
    video. One analyzer per meeting: it holds every participant's state."""

    def __init__(self, settings: AnalyzerSettings, classifier: AdaptiveFaceClassifier,
                 smoother: Smoother, analytics: MeetingAnalytics,
                 timeline: TimelineWriter | None = None,
                 annotated: AnnotatedVideo | None = None,
                 on_alert: Callable[[Alert], None] | None = None) -> None:
        if settings.analysis_fps is None:
            raise ValueError("choose an analysis rate (analysis_fps) before running")
        self.settings = settings
        self.tracker = FaceTracker(hold_seconds=settings.hold_seconds, follow=settings.tracking)
        self.classifier = classifier
        self.smoother = smoother
        self.analytics = analytics
        self.timeline = timeline
        self.annotated = annotated
        self.on_alert = on_alert
        self.timer = StageTimer()
        self._smoothed: dict[int, np.ndarray] = {}
        self._last_step: dict[int, float] = {}
        self._step_slack = 0.0

    def run(self, source: VideoSource, progress: bool = True) -> RunStats:
        """Process the source to its end (or Ctrl-C); everything computed is kept."""
        stats = RunStats()
        # Half a source frame of slack, so 30 fps video meets a 10 Hz step every 3 frames.
        self._step_slack = 0.5 / source.native_fps
        total = source.frame_count if not source.live else None
        if total and self.settings.max_fps:
            total = int(total * min(1.0, self.settings.max_fps / source.native_fps))
        bar = tqdm(total=total, desc="analyze", unit="frame", disable=not progress)
        feed = prepared_frames(source, self._feed_settings(), self._new_detector)
        try:
            for prepared in feed:
                self._process(prepared, stats)
                stats.frames += 1
                stats.last_time_s = prepared.frame.time_s
                if source.live:
                    stats.capture_to_row_s.append(time.monotonic() - prepared.frame.read_at)
                bar.update()
        except KeyboardInterrupt:
            stats.interrupted = True
        finally:
            feed.close()
            bar.close()
        stats.seconds = {k: round(v, 4) for k, v in self.timer.seconds.items()}
        stats.faces_classified = self.classifier.classified
        stats.faces_reused = self.classifier.reused
        return stats

    def _feed_settings(self) -> FeedSettings:
        settings = self.settings
        return FeedSettings(max_fps=settings.max_fps, detect_width=settings.detect_width,
                            detect_every=settings.detect_every,
                            detect_all=not settings.tracking, workers=settings.workers)

    def _new_detector(self) -> HaarFaceDetector:
        return HaarFaceDetector(min_face=self.settings.min_face,
                                min_neighbors=self.settings.min_neighbors)

    def _process(self, prepared: PreparedFrame, stats: RunStats) -> None:
        frame, scaled, detections = prepared.frame, prepared.scaled, prepared.detections
        self.timer.add(prepared.seconds)
        if detections is not None:
            stats.detections += 1
        with self.timer.stage("track"):
            tracks, ended = self.tracker.update(scaled, frame.time_s, detections)
        stats.tracked_ids.update(t.id for t in tracks)
        for participant in ended:
            self._forget(participant)
        shown = [t for t in tracks if t.id not in self.settings.exclude]
        self._analyse(frame, scaled.gray, shown)
        with self.timer.stage("output"):
            self._record(frame, shown, [t.box for t in tracks if t.id in self.settings.exclude])

    def _analyse(self, frame: Frame, gray: np.ndarray, shown: list[Track]) -> None:
        """Classify and smooth the participants due an analysis step at this frame."""
        period = 1.0 / self.settings.analysis_fps if self.settings.analysis_fps else 0.0
        due = [t for t in shown if frame.time_s - self._last_step.get(t.id, -np.inf)
               >= period - self._step_slack]
        if not due:
            return
        ids = [t.id for t in due]
        with self.timer.stage("classify"):
            crops = np.stack([crop_face(gray, t.box) for t in due])
            probs = self.classifier.classify(ids, crops)
        with self.timer.stage("temporal"):
            smoothed = self.smoother.update_many(ids, probs)
        for participant, row in zip(ids, smoothed, strict=True):
            self._smoothed[participant] = row
            self._last_step[participant] = frame.time_s

    def _record(self, frame: Frame, shown: list[Track], hidden: list[np.ndarray]) -> None:
        ids = [t.id for t in shown]
        boxes = np.array([t.box for t in shown]).reshape(-1, 4)
        probs = np.array([self._smoothed[i] for i in ids]).reshape(len(ids), NUM_CLASSES)
        engagement, fired = self.analytics.add(frame.time_s, ids, probs)
        if self.timeline is not None:
            self.timeline.write(frame.index, frame.time_s, ids, boxes, probs, engagement)
        if self.annotated is not None:
            self.annotated.write(frame.image, {i: (b, p) for i, b, p in zip(ids, boxes, probs,
                                                                          strict=True)}, hidden)
        if self.on_alert is not None:
            for alert in fired:
                self.on_alert(alert)

    def _forget(self, participant: int) -> None:
        self.classifier.forget(participant)
        self.smoother.forget(participant)
        self._smoothed.pop(participant, None)
        self._last_step.pop(participant, None)
