"""`emofl analyze` against a hostile sweep: an excluded face the detector misses is still never
shown, an --exclude id that never appears is warned about, results already in --out are never
overwritten, and a class named twice in --weights is refused."""

import csv
import json

import cv2
import numpy as np
import pytest
from cli_helpers import main_in_process

from emofl.client.meeting import analyzer as analyzer_module
from emofl.client.meeting.analytics import parse_weights

# Imported before any test touches FFmpeg (see tests/test_analyze_cli.py).
from emofl.client.meeting.video_source import open_source  # noqa: F401
from emofl.common.data.synthetic import make_synthetic_faces
from emofl.common.errors import SettingsError
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

# 2x2 gallery at 10 fps; detection every 10 frames, so detection passes fall on frames 0, 10,
# 20 and 30. The detector misses the top-left tile's face on the first two passes.
SPEC = GallerySpec(width=400, height=300, rows=2, cols=2, fps=10.0, seconds=4.0, face_size=120,
                   segment_seconds=(1.0, 2.0), moving_tiles=4, absent_seconds=0, seed=2)
MISSED_TILE, MISSED_PASSES, DETECT_EVERY = 0, 2, 10
# Tiles 1, 2, 3 are found on the first pass and take ids 0, 1, 2 (reading order); the missed
# face, found on the third pass, takes id 3.
MISSED_ID, NEVER_SEEN_ID = 3, 9


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """The video and its truth: {frame: {tile: box}} for every face drawn."""
    video = tmp_path_factory.mktemp("reliability") / "gallery.mp4"
    truth_csv = write_gallery_video(make_synthetic_faces(200, seed=0), video, SPEC)
    truth: dict[int, dict[int, np.ndarray]] = {}
    with truth_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["present"] == "1":
                truth.setdefault(int(row["frame"]), {})[int(row["tile"])] = np.array(
                    [float(row[c]) for c in "xywh"])
    return video, truth


def detector_from_truth(truth):
    """A detector class that finds every drawn face exactly, except the missed tile's on the
    first MISSED_PASSES passes: as the Haar cascade misses a given face now and then."""

    class TruthDetector:
        def __init__(self, **_) -> None:
            self.passes = 0

        def detect(self, frame) -> np.ndarray:
            boxes = truth.get(self.passes * DETECT_EVERY, {})
            keep = [box for tile, box in boxes.items()
                    if tile != MISSED_TILE or self.passes >= MISSED_PASSES]
            self.passes += 1
            return np.array(keep, dtype=np.float64).reshape(-1, 4)

    return TruthDetector


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """High-frequency energy (variance of the Laplacian) inside the middle of a box."""
    x, y, w, h = (round(float(v)) for v in box)
    inner = image[y + h // 8:y + h - h // 8, x + w // 8:x + w - w // 8]
    return float(cv2.Laplacian(cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def frames_of(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def excluded_run(gallery, tmp_path_factory):
    video, truth = gallery
    out = tmp_path_factory.mktemp("excluded") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analyzer_module, "HaarFaceDetector", detector_from_truth(truth))
        from emofl.cli import main

        code = main(["analyze", str(video), "--out", str(out), "--exclude", str(MISSED_ID),
                     str(NEVER_SEEN_ID), "--save-annotated", "--smoothing", "none",
                     "--detect-every", str(DETECT_EVERY)])
    assert code == 0
    return out


def test_an_excluded_face_the_detector_misses_is_blurred_in_every_frame(gallery, excluded_run):
    video, truth = gallery
    with (excluded_run / "timeline.csv").open() as handle:
        shown = {int(row["participant"]) for row in csv.DictReader(handle)}
    assert shown == {0, 1, 2}  # so id 3 is the missed tile's face, and only it was excluded
    source, annotated = frames_of(video), frames_of(excluded_run / "annotated.mp4")
    assert len(annotated) == len(source) == round(SPEC.seconds * SPEC.fps)
    for frame, (original, written) in enumerate(zip(source, annotated, strict=True)):
        box = truth[frame][MISSED_TILE]
        assert sharpness(written, box) < 0.1 * sharpness(original, box), f"frame {frame}"


def test_consenting_faces_stay_visible(gallery, excluded_run):
    video, _ = gallery
    source, annotated = frames_of(video), frames_of(excluded_run / "annotated.mp4")
    with (excluded_run / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    ratios = [sharpness(annotated[int(r["frame"])], np.array([float(r[c]) for c in "xywh"]))
              / sharpness(source[int(r["frame"])], np.array([float(r[c]) for c in "xywh"]))
              for r in rows]
    assert rows and np.median(ratios) > 0.5


def test_an_excluded_id_that_never_appears_is_warned_about(excluded_run, capsys):
    run = json.loads((excluded_run / "summary.json").read_text())["run"]
    assert run["exclude_not_found"] == [NEVER_SEEN_ID]
    assert len(run["warnings"]) == 1 and f"--exclude {NEVER_SEEN_ID}" in run["warnings"][0]


def test_the_warning_is_printed_on_stderr(gallery, tmp_path, capsys, monkeypatch):
    video, truth = gallery
    monkeypatch.setattr(analyzer_module, "HaarFaceDetector", detector_from_truth(truth))
    code, err = main_in_process(capsys, "analyze", str(video), "--out", str(tmp_path / "o"),
                                "--exclude", "7", "--smoothing", "none", "--fps", "2")
    warnings = [line for line in err if "warning" in line]
    assert code == 0 and len(warnings) == 1 and "--exclude 7" in warnings[0]


@pytest.mark.parametrize("existing", ["plots/engagement.png", "annotated.mp4", "summary.json",
                                      "timeline.csv"])
def test_results_already_in_out_are_never_overwritten(gallery, tmp_path, capsys, existing):
    out = tmp_path / "out"
    (out / existing).parent.mkdir(parents=True, exist_ok=True)
    (out / existing).write_bytes(b"an earlier result")
    code, err = main_in_process(capsys, "analyze", str(gallery[0]), "--out", str(out))
    assert code == 2 and len(err) == 1 and "already holds" in err[0], err
    assert (out / existing).read_bytes() == b"an earlier result"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        existing]


def test_out_that_is_a_file_is_refused(gallery, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder")
    code, err = main_in_process(capsys, "analyze", str(gallery[0]), "--out", str(out))
    assert code == 2 and len(err) == 1 and "not a folder" in err[0], err
    assert out.read_text() == "not a folder"


@pytest.mark.parametrize("text", ["happy=1,happy=0", "angry=1,anger=0.2", "Sad=1, sad=1"])
def test_a_class_weighted_twice_is_refused(text):
    with pytest.raises(SettingsError, match="given twice"):
        parse_weights(text)


def test_a_class_weighted_twice_is_a_one_line_error(gallery, tmp_path, capsys):
    code, err = main_in_process(capsys, "analyze", str(gallery[0]), "--out", str(tmp_path / "o"),
                                "--weights", "happy=1,happy=0")
    assert code == 2 and len(err) == 1 and "happy is given twice" in err[0], err
    assert not (tmp_path / "o").exists()
