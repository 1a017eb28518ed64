"""Operating-system errors end a command in one line naming the path and the problem, exit 2,
no traceback, and lose nothing already saved (issue 10, finding 10).

A full disk and a read-only file system are simulated by making the file system calls inside
`atomic_io` fail (as root, file modes stop nothing); a file where a folder should be is real.
"""

import errno
import json
import os
import re
from pathlib import Path

import pytest
import torch
from cli_helpers import main_in_process

from emofl.common.crypto.key_files import PUBLIC_CONTEXT, SECRET_CONTEXT
from emofl.common.errors import UserError
from emofl.common.protocol.run_settings import RunSettings
from emofl.common.storage import atomic_io
from emofl.common.storage.atomic_io import WriteError
from emofl.server.federated import round_recorder
from emofl.server.federated.checkpoint import Checkpoint, checkpoint_path, save_checkpoint
from emofl.simulations.federation.runner import simulate

SIMULATE = ("simulate", "--data", "synthetic", "--clients", "2", "--rounds", "1",
            "--synthetic-size", "60", "--batch-size", "30", "--alpha", "0", "--model-width", "8")
PRETRAIN = ("pretrain", "--data", "synthetic", "--synthetic-size", "40", "--epochs", "2",
            "--batch-size", "20", "--model-width", "4")
FULL_DISK = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
READ_ONLY = OSError(errno.EROFS, os.strerror(errno.EROFS))


# A line of a progress bar: "public pre-training:  50%|█████     | 1/2 [00:02<00:02, ...]".
PROGRESS = re.compile(r"^[\w -]+: +\d+%\|.*\| \d+/\d+ \[[^]]*\]$")


def one_line_error(capsys, *args: str, before_work: bool = False) -> str:
    """Run `emofl ARGS`; assert it failed as a user error (exit 2) in one line of its own
    (besides the progress bar's; `before_work`: before any bar), with no traceback; that line."""
    code, lines = main_in_process(capsys, *args)
    assert code == 2, lines
    said = lines if before_work else [line for line in lines if not PROGRESS.match(line)]
    assert len(said) == 1 and said[0].startswith(f"emofl {args[0]}: error: "), lines
    assert "Traceback" not in said[0]
    return said[0]


def leftovers(folder: Path) -> list[str]:
    """The temporary files of atomic writes left in `folder`."""
    return sorted(path.name for path in folder.rglob(".*.tmp"))


def fail_replace(monkeypatch, name: str, error: OSError, after: int = 0) -> None:
    """Make atomic_io's final rename onto a file called `name` fail with `error`, after letting
    `after` such renames succeed: the temporary file is written in full by then."""
    real, done = os.replace, []

    def replace(source, target):
        if Path(target).name == name:
            done.append(target)
            if len(done) > after:
                raise error
        return real(source, target)

    monkeypatch.setattr(atomic_io.os, "replace", replace)


def fail_temporary_file(monkeypatch, error: OSError) -> None:
    """Make atomic_io's temporary file impossible to create, as on a read-only file system."""
    def mkstemp(*args, **kwargs):
        raise error

    monkeypatch.setattr(atomic_io.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("out", ["results.txt", "results.txt/run"])
def test_simulate_out_with_a_file_in_the_way(tmp_path, capsys, out):
    (tmp_path / "results.txt").write_text("an earlier result")
    line = one_line_error(capsys, *SIMULATE, "--out", str(tmp_path / out))
    assert f"{tmp_path / out}" in line and f"{tmp_path / 'results.txt'} is a file" in line
    assert (tmp_path / "results.txt").read_text() == "an earlier result"


def test_simulate_out_on_a_read_only_file_system(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def mkdir(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    line = one_line_error(capsys, *SIMULATE, "--out", str(out))
    assert line.endswith(f"cannot create folder {out}: read-only file system")


@pytest.mark.parametrize("write, before, after", [
    (atomic_io.write_json, {"round": 1}, {"round": 2}),
    (atomic_io.torch_save, {"w": torch.zeros(3)}, {"w": torch.ones(3)}),
])
@pytest.mark.parametrize("fault, reason", [("full disk", "no space left on device"),
                                           ("read-only", "read-only file system")])
def test_a_failed_write_keeps_the_earlier_version_and_no_temporary_file(
        tmp_path, monkeypatch, write, before, after, fault, reason):
    path = tmp_path / "state"
    write(path, before)
    saved = path.read_bytes()
    if fault == "full disk":
        fail_replace(monkeypatch, path.name, FULL_DISK)
    else:
        fail_temporary_file(monkeypatch, READ_ONLY)
    with pytest.raises(WriteError) as failure:
        write(path, after)
    assert str(failure.value) == f"cannot write {path}: {reason}"
    assert path.read_bytes() == saved and leftovers(tmp_path) == []


def _saved_run(out: Path) -> None:
    """A run folder as one completed round leaves it: a checkpoint and a device's ledger."""
    settings = RunSettings(data="synthetic", num_clients=2, rounds=2, synthetic_size=60,
                           batch_size=30, alpha=0.0, model_width=8, out=str(out))
    save_checkpoint(out, Checkpoint(round=1, model_state={"w": torch.zeros(2)},
                                    settings=settings.to_config()))
    (out / "clients").mkdir()
    (out / "clients" / "client_0.ledger.sqlite").write_bytes(b"the device's signed ledger")


@pytest.mark.parametrize("damage, problem", [
    (lambda data: data[: len(data) // 2], "is damaged"),
    (lambda data: b"", "is damaged"),
    (lambda data: b"not a torch file at all", "is damaged"),
])
def test_a_damaged_checkpoint_on_resume_is_named_and_the_ledgers_kept(
        tmp_path, capsys, damage, problem):
    out = tmp_path / "run"
    _saved_run(out)
    checkpoint = checkpoint_path(out)
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    files = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    line = one_line_error(capsys, "simulate", "--resume", "--rounds", "2", "--out", str(out))
    assert f"{checkpoint} {problem}" in line
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == files


def test_a_checkpoint_that_is_not_a_runs_state_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    _saved_run(out)
    torch.save({"round": "one", "model_state": {}}, checkpoint_path(out))
    line = one_line_error(capsys, "simulate", "--resume", "--rounds", "2", "--out", str(out))
    assert f"{checkpoint_path(out)} is damaged: its 'round' is a str, not a int" in line


def test_keys_init_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "keys"
    out.write_text("not a key folder")
    line = one_line_error(capsys, "keys", "init", "--out", str(out))
    assert line.endswith(f"{out} is a file; --out names the key folder to create")
    assert out.read_text() == "not a key folder"


def test_a_failed_keys_init_leaves_no_partial_keys_so_a_rerun_succeeds(
        tmp_path, capsys, monkeypatch):
    out = tmp_path / "keys"
    fail_replace(monkeypatch, PUBLIC_CONTEXT, FULL_DISK)  # the secret context is written by then
    line = one_line_error(capsys, "keys", "init", "--out", str(out))
    assert line.endswith(f"cannot write {out / PUBLIC_CONTEXT}: no space left on device")
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    code, _ = main_in_process(capsys, "keys", "init", "--out", str(out))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([SECRET_CONTEXT, PUBLIC_CONTEXT])


@pytest.mark.parametrize("out, problem", [
    ("models", "models is a folder; --out names the model file to write"),
    ("notes.txt/model.pt", "notes.txt is a file, not a folder"),
])
def test_pretrain_out_that_is_a_folder_or_under_a_file(tmp_path, capsys, out, problem):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "earlier.pt").write_bytes(b"an earlier model")
    (tmp_path / "notes.txt").write_text("notes")
    # Refused before training, not when the first epoch is saved.
    line = one_line_error(capsys, *PRETRAIN, "--out", str(tmp_path / out), before_work=True)
    assert line.endswith(f"{tmp_path / problem}")
    assert (tmp_path / "models" / "earlier.pt").read_bytes() == b"an earlier model"
    assert (tmp_path / "notes.txt").read_text() == "notes"


def test_pretrain_out_that_exists_is_refused_and_kept(tmp_path, capsys):
    model, card = tmp_path / "model.pt", tmp_path / "model_card.json"
    model.write_bytes(b"an earlier model")
    card.write_text('{"note": "its card"}')
    line = one_line_error(capsys, *PRETRAIN, "--out", str(model), before_work=True)
    assert line.endswith(f"{model} already exists; choose another --out")
    assert model.read_bytes() == b"an earlier model"
    assert card.read_text() == '{"note": "its card"}'


def test_json_is_written_strictly_with_null_for_nan_and_infinity(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_io.write_json(path, {"loss": float("nan"), "rounds": [{"eps": float("inf")}, 1.5]})

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "loss": None, "rounds": [{"eps": None}, 1.5]}

def _card_history(model: Path) -> list[dict]:
    return json.loads(model.with_name(f"{model.stem}_card.json").read_text())["training"][
        "history"]


def test_a_full_disk_during_pretraining_keeps_the_last_epoch_and_the_rerun_resumes(
        tmp_path, capsys, monkeypatch):
    model = tmp_path / "model.pt"
    checkpoint = tmp_path / "model_checkpoint.pt"
    fail_replace(monkeypatch, checkpoint.name, FULL_DISK, after=1)  # epoch 2's checkpoint
    line = one_line_error(capsys, *PRETRAIN, "--out", str(model))
    assert line.endswith(f"cannot write {checkpoint}: no space left on device")
    assert len(atomic_io.torch_load(checkpoint, "")["history"]) == 1
    assert not model.exists() and leftovers(tmp_path) == []
    monkeypatch.undo()
    code, _ = main_in_process(capsys, *PRETRAIN, "--out", str(model))
    assert code == 0 and len(_card_history(model)) == 2 and not checkpoint.exists()


def test_a_failed_model_card_write_leaves_no_model_without_its_card(
        tmp_path, capsys, monkeypatch):
    model = tmp_path / "model.pt"
    fail_replace(monkeypatch, "model_card.json", FULL_DISK)
    line = one_line_error(capsys, *PRETRAIN, "--out", str(model))
    assert line.endswith(f"cannot write {tmp_path / 'model_card.json'}: no space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_checkpoint.pt"]
    monkeypatch.undo()
    code, _ = main_in_process(capsys, *PRETRAIN, "--out", str(model))
    assert code == 0 and len(_card_history(model)) == 2


def test_a_run_whose_first_checkpoint_could_not_be_written_resumes_with_its_ledgers(
        tmp_path, monkeypatch, capsys):
    """Round 1's devices are charged before the server checkpoints it; when that write fails
    (a full disk), the folder can still be resumed, and the charge is kept and named."""
    out = tmp_path / "run"
    settings = RunSettings(data="synthetic", num_clients=2, rounds=3, synthetic_size=60,
                           batch_size=30, alpha=0.0, model_width=8, epsilon=20.0, out=str(out))
    real_save = round_recorder.save_checkpoint

    def disk_full_after_round_0(run_dir, checkpoint: Checkpoint) -> None:
        if checkpoint.round >= 1:
            raise WriteError(f"cannot write {run_dir}/checkpoint.pt: no space left on device")
        real_save(run_dir, checkpoint)

    monkeypatch.setattr(round_recorder, "save_checkpoint", disk_full_after_round_0)
    with pytest.raises(UserError):
        simulate(settings, progress=False)
    monkeypatch.undo()
    capsys.readouterr()
    simulate(RunSettings(out=str(out), rounds=1, resume=True), progress=False)
    assert "of round 1 were charged to its ledger but never aggregated" in capsys.readouterr().err
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    assert [entry["round"] for entry in rounds] == [1]
