"""`emofl analyze`: the output files and their schema on a tiny generated meeting, privacy
(nothing with pixels unless asked; excluded participants blurred and dropped), every bad input
as a one-line error, and a stream that ends early keeping what was computed."""

import csv
import json

import cv2
import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_emofl

from emofl.cli import main
from emofl.client.meeting.report import TIMELINE_COLUMNS

# Imported before any test touches FFmpeg: the module quiets FFmpeg's console messages, which
# takes effect when OpenCV first loads FFmpeg (in the real command it always comes first).
from emofl.client.meeting.video_source import VideoSourceError, open_source
from emofl.common.data.synthetic import make_synthetic_faces
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

SPEC = GallerySpec(width=400, height=300, rows=2, cols=2, fps=10.0, seconds=4.0, face_size=120,
                   segment_seconds=(1.0, 2.0), moving_tiles=1, absent_seconds=0, seed=1)
EXPECTED_COLUMNS = ("frame,time_s,participant,x,y,w,h,angry,disgust,fear,happy,sad,surprise,"
                    "neutral,label,engagement").split(",")
PLOTS = {"engagement.png", "stability.png", "room_distribution.png", "emotion_heatmap.png"}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("meeting") / "gallery.mp4"
    write_gallery_video(make_synthetic_faces(200, seed=0), path, SPEC)
    return path


@pytest.fixture(scope="module")
def analysis(video, tmp_path_factory):
    """One real `emofl analyze` run (a subprocess, as users run it)."""
    out = tmp_path_factory.mktemp("runs") / "analysis"
    result = run_emofl("analyze", str(video), "--out", str(out), "--weights", "happy=0.9")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def read_rows(path):
    with path.open() as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_timeline_schema_one_row_per_participant_per_frame(analysis):
    out, printed = analysis
    columns, rows = read_rows(out / "timeline.csv")
    assert columns == EXPECTED_COLUMNS and tuple(columns) == TIMELINE_COLUMNS
    assert rows, "no face tracked in the test video"
    frames = round(SPEC.seconds * SPEC.fps)
    keys = [(int(r["frame"]), int(r["participant"])) for r in rows]
    assert len(keys) == len(set(keys)) and max(k[0] for k in keys) < frames
    for row in rows:
        probs = np.array([float(row[c]) for c in EXPECTED_COLUMNS[7:14]])
        assert probs.sum() == pytest.approx(1.0, abs=1e-3)
        assert row["label"] == EXPECTED_COLUMNS[7 + int(probs.argmax())]
        assert float(row["time_s"]) == pytest.approx(int(row["frame"]) / SPEC.fps, abs=1e-3)
        x, y, w, h = (int(row[c]) for c in "xywh")
        assert w > 0 and h > 0 and -w < x < SPEC.width and -h < y < SPEC.height
        assert 0 <= float(row["engagement"]) <= 1
    assert printed["frames_processed"] == frames


def test_summary_and_plots(analysis):
    out, printed = analysis
    summary = json.loads((out / "summary.json").read_text())
    run = summary["run"]
    assert run["frames_processed"] == run["frames_read"] == run["frames_declared"] == 40
    assert not run["ended_early"] and not run["interrupted"]
    assert set(run["stage_seconds"]) >= {"decode", "detect", "track", "classify", "temporal"}
    assert run["smoothing"]["method"] == "temporal" and run["settings"]["analysis_fps"] == 10
    assert run["settings"]["weights"]["happy"] == 0.9
    _, rows = read_rows(out / "timeline.csv")
    people = summary["participants"]
    assert set(people) == {r["participant"] for r in rows}
    for pid, person in people.items():
        assert person["frames_seen"] == sum(r["participant"] == pid for r in rows)
        assert person["dominant_emotion"] in EXPECTED_COLUMNS[7:14]
        assert 0 <= person["mean_engagement"] <= 1 and person["stability"] >= 0
        assert set(person["stability_windowed"]) == {"window_s", "mean", "max", "max_at_s"}
        assert isinstance(person["alerts"], list)
    assert summary["room"]["over_time"] and isinstance(summary["alerts"], list)
    assert {p.name for p in (out / "plots").iterdir()} == PLOTS
    assert printed["participants"] == len(people)


def test_no_pixels_written_without_save_annotated(analysis):
    out, _ = analysis
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {"timeline.csv", "summary.json", *(f"plots/{name}" for name in PLOTS)}


def test_excluded_participant_is_blurred_and_dropped(video, analysis, tmp_path):
    _, baseline = read_rows(analysis[0] / "timeline.csv")
    excluded = int(baseline[0]["participant"])
    out = tmp_path / "excluded"
    assert main(["analyze", str(video), "--out", str(out), "--exclude", str(excluded),
                 "--save-annotated", "--smoothing", "none"]) == 0
    _, rows = read_rows(out / "timeline.csv")
    assert rows and all(int(r["participant"]) != excluded for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert str(excluded) not in summary["participants"]
    assert all(a["participant"] != excluded for a in summary["alerts"])
    # annotated.mp4 has every frame; where the excluded face was, only a smooth blur is left
    box = next(r for r in baseline if int(r["participant"]) == excluded)
    frame, (x, y, w, h) = int(box["frame"]), (int(box[c]) for c in "xywh")
    annotated, original = cv2.VideoCapture(str(out / "annotated.mp4")), cv2.VideoCapture(str(video))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 40
    for capture in (annotated, original):
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
    sharpness = [cv2.Laplacian(cv2.cvtColor(c.read()[1][y:y + h, x:x + w], cv2.COLOR_BGR2GRAY),
                               cv2.CV_64F).var() for c in (annotated, original)]
    assert sharpness[0] < 0.1 * sharpness[1]


def run_main(capfd, *args: str) -> tuple[int, list[str]]:
    code = main(["analyze", *args])
    return code, capfd.readouterr().err.strip().splitlines()


def test_missing_video_is_a_one_line_error(tmp_path):
    result = run_emofl("analyze", str(tmp_path / "absent.mp4"), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "video not found", "absent.mp4")
    assert not (tmp_path / "out").exists()


def zero_frame_video(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    return path


@pytest.mark.parametrize("make_input, fragment", [
    (lambda d: (d / "noise.mp4").write_bytes(b"\x00not a video" * 100) and d / "noise.mp4",
     "cannot read video"),
    (lambda d: zero_frame_video(d / "empty.avi"), "no frames in video"),
    (lambda d: d, "not a video file"),
])
def test_bad_video_files_are_one_line_errors(tmp_path, capfd, make_input, fragment):
    code, err = run_main(capfd, str(make_input(tmp_path)), "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_open_source_reports_the_problem_as_a_data_error(tmp_path):
    with pytest.raises(VideoSourceError, match="no frames in video"):
        open_source(str(zero_frame_video(tmp_path / "empty.avi")))
    with pytest.raises(ValueError, match="either a video file or a camera"):
        open_source()


def test_camera_that_cannot_open(tmp_path, capfd):
    code, err = run_main(capfd, "--camera", "99", "--out", str(tmp_path / "out"))
    assert code == 2 and err == ["emofl analyze: error: cannot open camera 99"]


def test_bad_weights_and_a_used_output_folder(video, analysis, tmp_path, capfd):
    code, err = run_main(capfd, str(video), "--out", str(tmp_path / "o"), "--weights", "joy=x")
    assert code == 2 and len(err) == 1 and "--weights" in err[0]
    code, err = run_main(capfd, str(video), "--out", str(analysis[0]))
    assert code == 2 and len(err) == 1 and "already holds an analysis" in err[0]


def test_stream_that_ends_early_keeps_what_was_computed(video, tmp_path, capfd):
    # re-encode as MJPG AVI (readable up to a cut) and cut it in the middle
    source, full = cv2.VideoCapture(str(video)), tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), SPEC.fps,
                             (SPEC.width, SPEC.height))
    while (frame := source.read()[1]) is not None:
        writer.write(frame)
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code, _ = run_main(capfd, str(cut), "--out", str(out), "--smoothing", "ema")
    assert code == 0
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["ended_early"] and 0 < run["frames_read"] < run["frames_declared"] == 40
    _, rows = read_rows(out / "timeline.csv")
    assert rows and max(int(r["frame"]) for r in rows) < run["frames_read"]


def test_fps_limit_takes_evenly_spaced_frames(video):
    with open_source(str(video)) as source:
        frames = [(f.index, f.time_s) for f in source.frames(max_fps=4.0)]
        assert source.frames_read == 40
    # 10 fps video at most 4 per second: frames 0, 2.5, 5, ... rounded up to whole frames
    assert [i for i, _ in frames] == [0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28, 30, 33, 35, 38]
    assert frames[1][1] == pytest.approx(0.3)


def test_a_video_without_faces_gives_empty_results(tmp_path, capfd):
    video = tmp_path / "empty_room.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(15):
        writer.write(np.full((120, 160, 3), 40 + 5 * i, np.uint8))
    writer.release()
    code, _ = run_main(capfd, str(video), "--out", str(tmp_path / "out"))
    assert code == 0
    columns, rows = read_rows(tmp_path / "out" / "timeline.csv")
    assert columns == EXPECTED_COLUMNS and rows == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["participants"] == {} and summary["run"]["frames_processed"] == 15
    assert {p.name for p in (tmp_path / "out" / "plots").iterdir()} == PLOTS
