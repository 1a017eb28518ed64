"""The device's ONNX runtime: the shipped ONNX files follow the torch models they were exported
from, a `--model FILE` is exported once and re-exported when its weights or card change, a
damaged ONNX file is refused, and classifying on ONNX Runtime imports neither torch nor
Opacus, and `emofl analyze` on ONNX Runtime writes the timeline torch writes."""

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_emofl

from emofl.client.inference.runtime_models import export_for
from emofl.common.data.classes import CLASSES
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.data.synthetic import make_synthetic_faces
from emofl.common.edge import evaluation
from emofl.common.edge.files import (
    FRAME_FP32,
    FRAME_INT8,
    TEMPORAL_FP32,
    read_export_card,
    source_matches,
    verified_file,
)
from emofl.common.edge.sessions import OnnxFrameModel
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import load_model, save_model
from emofl.common.model.model_cards import (
    SHIPPED_MODEL,
    SHIPPED_TEMPORAL_MODEL,
    WEIGHTS_DIR,
    card_path,
)
from emofl.common.model.temporal_store import load_temporal_model
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED_MODEL)[0], read_export_card(WEIGHTS_DIR)


@pytest.fixture(scope="module")
def synthetic_faces():
    return preprocess_faces(make_synthetic_faces(256, seed=3).images)


def test_the_shipped_onnx_files_were_exported_from_the_shipped_weights(shipped):
    _, card = shipped
    assert source_matches(card, "frame_model", SHIPPED_MODEL)
    assert source_matches(card, "temporal_model", SHIPPED_TEMPORAL_MODEL)
    for name in (FRAME_FP32, FRAME_INT8, TEMPORAL_FP32):
        verified_file(WEIGHTS_DIR, card, name)  # raises when a file does not match its card


def test_onnx_fp32_and_torch_agree_on_random_and_synthetic_faces(shipped, synthetic_faces):
    model, card = shipped
    onnx_model = OnnxFrameModel(verified_file(WEIGHTS_DIR, card, FRAME_FP32))
    noise = np.random.default_rng(0).standard_normal((64, 1, 48, 48)).astype(np.float32)
    for faces in (noise, synthetic_faces):
        reference = evaluation.torch_logits(model, faces)
        assert np.abs(onnx_model.logits(faces) - reference).max() < 1e-3
        with torch.inference_mode():
            features = model.features(torch.from_numpy(faces)).numpy()
        assert np.abs(onnx_model.features(faces) - features).max() < 1e-3


def test_the_int8_model_mostly_agrees_with_fp32(shipped, synthetic_faces):
    model, card = shipped
    fidelity = evaluation.frame_fidelity(verified_file(WEIGHTS_DIR, card, FRAME_INT8),
                                         evaluation.torch_logits(model, synthetic_faces),
                                         synthetic_faces, np.zeros(len(synthetic_faces), int))
    assert fidelity["agreement_with_torch_fp32"] >= 0.9


def test_the_temporal_graph_follows_the_dplstm_within_1e_3(shipped):
    _, card = shipped
    temporal, _ = load_temporal_model(SHIPPED_TEMPORAL_MODEL)
    deviation = evaluation.temporal_deviation(
        temporal, verified_file(WEIGHTS_DIR, card, TEMPORAL_FP32))
    assert deviation["max_abs_logit_difference_vs_torch"] < 1e-3


def test_a_model_file_is_exported_once_and_again_when_its_card_changes(tmp_path):
    path = tmp_path / "model.pt"
    torch.manual_seed(1)
    save_model(EmotionNet(width=4), path, {"note": "first"})
    notes = []
    first, _ = export_for(path, SHIPPED_TEMPORAL_MODEL, notes.append)
    again, _ = export_for(path, SHIPPED_TEMPORAL_MODEL, notes.append)
    assert first == again and len(notes) == 1
    card = json.loads(card_path(path).read_text())
    card["note"] = "edited"
    card_path(path).write_text(json.dumps(card))
    edited, _ = export_for(path, SHIPPED_TEMPORAL_MODEL, notes.append)
    assert edited != first and len(notes) == 2


def test_a_damaged_onnx_export_is_a_one_line_error(tmp_path):
    path = tmp_path / "model.pt"
    save_model(EmotionNet(width=4), path, {"note": "to be damaged"})
    folder, _ = export_for(path, SHIPPED_TEMPORAL_MODEL, lambda note: None)
    graph = folder / FRAME_FP32
    graph.chmod(0o644)
    graph.write_bytes(graph.read_bytes()[:-10])
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    result = run_emofl("classify", str(face), "--model", str(path))
    assert_one_line_error(result, str(graph), "does not match its card")


def test_classifying_on_onnx_runtime_imports_neither_torch_nor_opacus(tmp_path):
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    probe = ("import sys, runpy; sys.argv = ['emofl', 'classify', sys.argv[1]]\n"
             "try:\n    runpy.run_module('emofl', run_name='__main__')\n"
             "except SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n"
             "print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(face)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["file"] == str(face)
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def meeting(tmp_path_factory):
    path = tmp_path_factory.mktemp("meeting") / "gallery.mp4"
    spec = GallerySpec(width=320, height=240, rows=2, cols=2, fps=10.0, seconds=3.0,
                       face_size=100, segment_seconds=(1.0, 2.0), moving_tiles=1,
                       absent_seconds=0, seed=2)
    write_gallery_video(make_synthetic_faces(100, seed=0), path, spec)
    return path


def _timeline(folder) -> np.ndarray:
    with (folder / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "no face tracked in the test video"
    return np.array([[float(r[c]) for c in ("frame", "participant", *CLASSES)] for r in rows])


def test_analyze_on_onnx_runtime_matches_torch_and_imports_neither(meeting, tmp_path):
    probe = ("import sys, runpy; sys.argv = ['emofl', 'analyze', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('emofl', run_name='__main__')\n"
             "except SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n"
             "print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(meeting), "--out",
                             str(tmp_path / "onnx")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    torch_run = run_emofl("analyze", str(meeting), "--out", str(tmp_path / "torch"),
                          "--runtime", "torch")
    assert torch_run.returncode == 0, torch_run.stderr
    onnx_rows, torch_rows = _timeline(tmp_path / "onnx"), _timeline(tmp_path / "torch")
    assert onnx_rows.shape == torch_rows.shape
    np.testing.assert_array_equal(onnx_rows[:, :2], torch_rows[:, :2])
    assert np.abs(onnx_rows[:, 2:] - torch_rows[:, 2:]).max() < 1e-3
    summary = json.loads((tmp_path / "onnx" / "summary.json").read_text())
    assert summary["run"]["runtime"] == "onnx"
