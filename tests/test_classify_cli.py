"""`emofl classify` and `emofl serve-head` as a user runs them: JSON lines per face, the
encrypted path through a real service process, and one-line errors for bad input."""

import json
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from cli_helpers import assert_one_line_error, exported, run_emofl

from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("classify") / "model.pt"
    save_model(EmotionNet(width=4), path, {"note": "classify test model"})
    return exported(str(path))


@pytest.fixture()
def faces(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"face{i}.png"
        cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 255, (48, 48), np.uint8))
        paths.append(str(path))
    return paths


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_classify_prints_one_json_line_per_face(faces, model_file):
    result = run_emofl("classify", *faces, "--model", model_file)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [line["file"] for line in lines] == faces
    for line in lines:
        assert set(line) == {"file", "label", "probs"}
        assert abs(sum(line["probs"].values()) - 1) < 1e-4
        assert line["label"] == max(line["probs"], key=line["probs"].get)


def test_unreadable_image_is_reported_and_the_others_still_classified(tmp_path, faces,
                                                                      model_file):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    result = run_emofl("classify", faces[0], str(broken), faces[1], "--model", model_file)
    assert result.returncode == 2
    assert [line["file"] for line in json_lines(result.stdout)] == [faces[0], faces[1]]
    assert "Traceback" not in result.stderr
    assert f"cannot decode image: {broken}" in result.stderr
    assert "1 of 3 images could not be classified" in result.stderr


def test_detect_reports_images_without_faces(faces, model_file):
    result = run_emofl("classify", faces[0], "--detect", "--model", model_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "no face found" in result.stderr


@pytest.fixture()
def head_service(model_file):
    process = subprocess.Popen(
        [sys.executable, "-m", "emofl", "serve-head", "--model", model_file, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert "serving on 127.0.0.1:" in line, process.stderr.read()
    yield line.split("serving on ")[1].split(" ")[0]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_encrypted_classification_matches_local(faces, model_file, head_service):
    local = json_lines(run_emofl("classify", *faces, "--model", model_file).stdout)
    result = run_emofl("classify", *faces, "--model", model_file, "--encrypted",
                       "--server", head_service)
    assert result.returncode == 0, result.stderr
    remote = json_lines(result.stdout)
    assert [r["label"] for r in remote] == [r["label"] for r in local]
    for encrypted, clear in zip(remote, local, strict=True):
        for name, p in clear["probs"].items():
            assert abs(encrypted["probs"][name] - p) < 1e-4


def test_encrypted_needs_a_server(faces, model_file):
    assert_one_line_error(run_emofl("classify", faces[0], "--encrypted"),
                          "--encrypted and --server HOST:PORT go together")


def test_unreachable_server(faces, model_file):
    result = run_emofl("classify", faces[0], "--model", model_file, "--encrypted",
                       "--server", "127.0.0.1:1")
    assert_one_line_error(result, "127.0.0.1:1", "UNAVAILABLE")


def test_serve_head_refuses_a_bad_certificate(tmp_path, model_file):
    cert = tmp_path / "cert.pem"
    cert.write_text("nope")
    result = run_emofl("serve-head", "--model", model_file, "--port", "0",
                       "--tls-cert", str(cert), "--tls-key", str(cert))
    assert_one_line_error(result, "is not a PEM certificate")
