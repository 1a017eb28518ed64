"""The threaded front of the meeting pipeline: the same timeline with one worker and several,
frames in stream order, workers stopped when the analyzer stops, a camera that outruns the
analyzer dropping its oldest frames instead of falling behind."""

import json
import threading
import time
from pathlib import Path

import cv2
import pytest

from emofl.cli import main as cli_main
from emofl.client.inference.face_detector import HaarFaceDetector
from emofl.client.meeting.analyze_run import AnalyzeOptions, run_analysis
from emofl.client.meeting.analyzer import AnalyzerSettings
from emofl.client.meeting.frame_feed import LIVE_QUEUE, FeedSettings, prepared_frames
from emofl.client.meeting.video_source import VideoSource, open_source
from emofl.common.data.synthetic import make_synthetic_faces
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

SPEC = GallerySpec(width=480, height=360, rows=3, cols=3, fps=15.0, seconds=4.0, face_size=96,
                   segment_seconds=(1.0, 2.0), moving_tiles=2, absent_seconds=1.0, seed=3)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feed") / "gallery.mp4"
    write_gallery_video(make_synthetic_faces(300, seed=2), path, SPEC)
    return path


def _analyze(video: Path, out: Path, workers: int) -> tuple[str, dict]:
    result = run_analysis(AnalyzeOptions(
        out=out, video=str(video), progress=False,
        pipeline=AnalyzerSettings(detect_every=3, workers=workers)))
    phases = result["phase_seconds"]  # what edge_start reads; each phase timed, in order
    assert list(phases) == ["models", "pipeline", "summary", "plots"]
    assert all(seconds >= 0 for seconds in phases.values()) and phases["pipeline"] > 0
    return (out / "timeline.csv").read_text(), (out / "summary.json").read_text()


def test_timeline_is_the_same_with_one_worker_and_several(video, tmp_path):
    one, _ = _analyze(video, tmp_path / "one", workers=1)
    assert one.count("\n") > 9 * 40  # most of 60 frames x 9 faces have a row
    for workers in (2, 4):
        several, summary = _analyze(video, tmp_path / f"w{workers}", workers=workers)
        assert several == one, f"timeline differs with {workers} workers"
        assert f'"workers": {workers}' in summary


def _feed(source: VideoSource, workers: int, detect_every: int = 2):
    return prepared_frames(source, FeedSettings(max_fps=None, detect_width=320,
                                                detect_every=detect_every, detect_all=False,
                                                workers=workers), HaarFaceDetector)


def _feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(("emofl-prepare", "emofl-decode", "emofl-camera"))]


def test_frames_come_in_order_with_detection_on_schedule(video):
    with open_source(str(video)) as source:
        prepared = list(_feed(source, workers=3, detect_every=4))
    assert [p.frame.index for p in prepared] == list(range(int(SPEC.fps * SPEC.seconds)))
    assert [p.detections is not None for p in prepared] == [i % 4 == 0
                                                           for i in range(len(prepared))]
    assert all(len(p.detections) >= 6 for p in prepared if p.detections is not None)


def test_stopping_early_stops_every_worker(video):
    with open_source(str(video)) as source:
        feed = _feed(source, workers=3)
        for position, _ in enumerate(feed):
            if position == 5:
                break
        feed.close()
    deadline = time.monotonic() + 5
    while _feed_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _feed_threads()


def test_a_camera_faster_than_the_analyzer_drops_its_oldest_frames(video):
    """A source marked live reads as fast as the file decodes, like a camera that outruns a
    slow analyzer: frames must be dropped, never queued without bound."""
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    assert ok
    source = VideoSource(capture, first, "camera under test", live=True)
    seen = []
    for prepared in _feed(source, workers=1):
        seen.append(prepared.frame.index)
        waited = time.monotonic() - prepared.frame.read_at
        assert waited < (LIVE_QUEUE + 2) * 0.03 + 0.5  # bounded: a few slow steps, no backlog
        time.sleep(0.03)  # an analyzer slower than the source
    source.close()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert len(seen) < int(SPEC.fps * SPEC.seconds) * 0.8  # frames were dropped
    assert not _feed_threads()


def test_a_video_played_in_real_time_keeps_its_pace_with_a_bounded_delay(video, tmp_path):
    """`--realtime`: the file's frames arrive no sooner than their time, as a camera's would,
    and the summary gives each frame's delay from capture to its row."""
    run_analysis(AnalyzeOptions(out=tmp_path / "rt", video=str(video), realtime=True,
                                progress=False))
    run = json.loads((tmp_path / "rt" / "summary.json").read_text())["run"]
    assert run["live"] is True
    assert run["pipeline_seconds"] >= SPEC.seconds - 2 / SPEC.fps  # paced, not as fast as possible
    delay = run["capture_to_row_ms"]
    assert delay["frames"] == run["frames_processed"] > 0.9 * SPEC.fps * SPEC.seconds
    assert 0 < delay["p50"] <= delay["p95"] < 250


def test_realtime_is_refused_for_a_camera(tmp_path, capsys):
    assert cli_main(["analyze", "--camera", "0", "--realtime", "--out", str(tmp_path)]) == 2
    assert "--realtime plays a video file" in capsys.readouterr().err
