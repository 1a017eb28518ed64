"""The `emofl` command: bad input ends in one line naming the problem and exit 2; a fault in
emofl in one line saying so, its traceback in a log file, and exit 1."""

import json
import tempfile
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, main_in_process, run_emofl

from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import save_model


@pytest.fixture()
def small_model(tmp_path):
    path = tmp_path / "model.pt"
    save_model(EmotionNet(width=8), path, {"note": "test model"})
    return path


def test_evaluate_prints_accuracy_per_class_and_n(tmp_path, small_model):
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    import cv2
    import numpy as np

    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 48), 40 * i, np.uint8))
    result = run_emofl("evaluate", "--data", str(tmp_path / "faces"), "--model", str(small_model))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 3 and 0 <= report["accuracy"] <= 1
    assert set(report["per_class_accuracy"]) == {"angry", "disgust", "fear", "happy", "sad",
                                                 "surprise", "neutral"}
    assert report["per_class_accuracy"]["sad"] is None  # no sad faces in the set


def test_model_info_prints_the_card(small_model):
    result = run_emofl("model-info", "--model", str(small_model))
    assert result.returncode == 0
    assert json.loads(result.stdout)["note"] == "test model"


def test_missing_model_file(tmp_path):
    result = run_emofl("model-info", "--model", str(tmp_path / "nope.pt"))
    assert_one_line_error(result, "model file not found", "nope.pt")


def test_corrupt_model_file(tmp_path, small_model):
    small_model.write_bytes(b"not a torch file")
    result = run_emofl("evaluate", "--data", "synthetic", "--model", str(small_model))
    assert_one_line_error(result, "cannot load model weights", str(small_model))


def test_evaluate_missing_data(tmp_path, small_model):
    result = run_emofl("evaluate", "--data", str(tmp_path / "absent"), "--model", str(small_model))
    assert_one_line_error(result, "data path not found", "absent")


def test_simulate_bad_csv_row_names_file_and_row(tmp_path):
    csv = tmp_path / "fer.csv"
    good = " ".join(["0"] * 2304)
    csv.write_text(f"emotion,pixels,Usage\n3,{good},Training\n4,1 2 3,Training\n")
    result = run_emofl("simulate", "--data", str(csv), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "fer.csv row 3", "expected 2304 pixels, got 3")
    assert not (tmp_path / "run").exists()


def test_simulate_unknown_class_folder(tmp_path):
    (tmp_path / "faces" / "bored").mkdir(parents=True)
    result = run_emofl("simulate", "--data", str(tmp_path / "faces"), "--out", str(tmp_path / "r"))
    assert_one_line_error(result, "unknown class folder 'bored'")


def test_simulate_unreadable_image(tmp_path):
    folder = tmp_path / "faces" / "sad"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"\x89PNG garbage")
    result = run_emofl("simulate", "--data", str(tmp_path / "faces"), "--out", str(tmp_path / "r"))
    assert_one_line_error(result, "cannot read image", "broken.png")


def test_simulate_refuses_to_overwrite_and_keeps_the_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"round": 1}, run_dir / "checkpoint.pt")
    result = run_emofl("simulate", "--out", str(run_dir))
    assert_one_line_error(result, "already holds a run", "--resume")
    assert torch.load(run_dir / "checkpoint.pt") == {"round": 1}


def test_simulate_resume_without_a_run(tmp_path):
    result = run_emofl("simulate", "--resume", "--out", str(tmp_path / "empty"))
    assert_one_line_error(result, "nothing to resume")


@pytest.mark.parametrize("args, message", [
    (["--clients", "0"], "must be at least 1"),
    (["--epsilon", "-1"], "must be positive"),
    (["--alpha", "-0.5"], "--alpha must be positive"),
])
def test_simulate_rejects_impossible_settings(tmp_path, args, message):
    result = run_emofl("simulate", "--out", str(tmp_path / "r"), *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_init_writes_client_and_server_halves_and_never_overwrites(tmp_path):
    result = run_emofl("keys", "init", "--out", str(tmp_path / "keys"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"]["security"] == "128-bit"
    secret = (tmp_path / "keys" / "secret_context.bin").read_bytes()
    assert oct((tmp_path / "keys" / "secret_context.bin").stat().st_mode & 0o777) == "0o600"
    again = run_emofl("keys", "init", "--out", str(tmp_path / "keys"))
    assert_one_line_error(again, "already holds keys")
    assert (tmp_path / "keys" / "secret_context.bin").read_bytes() == secret


def _raise(error: BaseException):
    def handler(args):
        raise error

    return handler


def test_an_internal_error_is_one_line_with_its_traceback_in_a_temp_log(tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("emofl.commands.models._model_info",
                        _raise(RuntimeError("state got lost\nsecond line")))
    code, err = main_in_process(capsys, "model-info")
    assert code == 1 and len(err) == 1, err
    prefix = "emofl model-info: internal error: RuntimeError: state got lost (traceback in "
    assert err[0].startswith(prefix) and err[0].endswith(")")
    log = Path(err[0][len(prefix):-1])
    assert log.parent == tmp_path and log.name.startswith("emofl-model-info-")
    text = log.read_text()
    assert "Traceback" in text and "second line" in text and "emofl model-info" in text


def test_an_internal_error_keeps_its_traceback_in_the_run_folder(tmp_path, capsys, monkeypatch):
    # A ValueError from inside emofl (here: a shape check) is a fault, not the user's mistake.
    monkeypatch.setattr("emofl.commands.federation._simulate",
                        _raise(ValueError("expected (N, 48, 48), got (3, 4)")))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code, err = main_in_process(capsys, "simulate", "--out", str(run_dir))
    assert code == 1 and len(err) == 1, err
    assert "internal error: ValueError: expected (N, 48, 48), got (3, 4)" in err[0]
    [log] = run_dir.glob("emofl-simulate-*.log")
    assert str(log) in err[0] and "ValueError" in log.read_text()


def test_an_os_error_about_a_path_is_the_users_mistake(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "keys" / "secret_context.bin")
    monkeypatch.setattr("emofl.commands.keys._keys_init",
                        _raise(FileNotFoundError(2, "No such file or directory", missing)))
    code, err = main_in_process(capsys, "keys", "init", "--out", str(tmp_path / "keys"))
    assert code == 2 and len(err) == 1 and missing in err[0]
    assert err[0].startswith("emofl keys: error: ")
