"""A run that cannot work fails in one line before Ray starts; a round that aggregates nothing
stops the run; a resumed run is the folder it is given (regression tests of the hostile sweep)."""

import json
import shutil

import pytest

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.ledger_store import DeviceLedger
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, init_keys
from emofl.common.errors import SettingsError
from emofl.common.privacy.events import DpEvent
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.round_recorder import round_failure
from emofl.simulations.federation.preflight import PreflightError, check_federation
from emofl.simulations.federation.runner import RunDirError, simulate


@pytest.mark.parametrize("changes, fragment", [
    (dict(num_clients=1000, synthetic_size=1), "cannot split the data among 1000 clients"),
    (dict(epsilon=1e-9), "cannot pay for 5 round(s)"),
    (dict(delta=0.5), "must be below 1/n"),
])
def test_a_run_that_cannot_work_is_refused_before_it_starts(tmp_path, changes, fragment):
    with pytest.raises(PreflightError) as excinfo:
        check_federation(RunSettings(out=str(tmp_path), **changes))
    assert fragment in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_keys_without_ckks_are_refused():
    with pytest.raises(SettingsError, match="key-dir"):
        RunSettings(key_dir="/tmp/keys")


def test_a_public_context_of_other_keys_is_refused_before_any_round(tmp_path):
    init_keys(tmp_path / "a")
    init_keys(tmp_path / "b")
    shutil.copy(tmp_path / "b" / PUBLIC_CONTEXT, tmp_path / "a" / PUBLIC_CONTEXT)
    settings = RunSettings(secure_agg="ckks", key_dir=str(tmp_path / "a"), out=str(tmp_path))
    with pytest.raises(PreflightError, match="not the public half of its secret context"):
        check_federation(settings)


def _entry(**client):
    return {"round": 4, "aggregated": 0, "unusable_replies": ["node 9 failed: boom"],
            "clients": [{"refused": "", "rejected": "", **client}]}


def test_a_round_that_aggregated_nothing_is_a_failure_unless_everyone_refused():
    assert "round 4: no update was aggregated (1 rejected" in round_failure(
        _entry(rejected="bad tag"))
    assert round_failure(_entry(refused="budget exhausted")) == ""
    assert round_failure({**_entry(), "aggregated": 2}) == ""


def test_a_moved_run_resumes_where_it_now_is_with_its_own_ledgers(tmp_path):
    first = tmp_path / "a"
    settings = RunSettings(data="synthetic", num_clients=2, rounds=1, synthetic_size=60,
                           batch_size=30, alpha=0.0, model_width=8, out=str(first))
    simulate(settings, progress=False)
    moved = tmp_path / "b"
    shutil.move(first, moved)
    simulate(RunSettings(out=str(moved), rounds=2, resume=True), progress=False)
    assert not first.exists()
    rounds = json.loads((moved / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    # The moved ledgers came along: round 1 spent the budget planned for one round, so every
    # client refuses round 2 instead of spending a second budget on the same faces.
    assert all("budget exhausted" in c["refused"] for c in rounds[1]["clients"])
    with pytest.raises(RunDirError, match="asked to change: epsilon"):
        simulate(RunSettings(out=str(moved), rounds=3, resume=True, epsilon=2.0),
                 progress=False)


def test_a_round_charged_but_not_checkpointed_is_named_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    simulate(RunSettings(data="synthetic", num_clients=2, rounds=1, synthetic_size=60,
                         batch_size=30, alpha=0.0, model_width=8, epsilon=20.0, out=str(out)),
             progress=False)
    # A SIGKILL after client 1 committed its ledger entry for round 2, before the checkpoint.
    clients = out / "clients"
    device = DeviceLedger(clients, 1, "rdp", simulated_device_signer(clients, 1))
    device.record(2, DpEvent(1.0, 0.5, 2), max_grad_norm=1.0, delta=1e-5)
    device.close()
    simulate(RunSettings(out=str(out), rounds=2, resume=True), progress=False)
    assert "client 1: 2 DP-SGD steps of round 2 were charged" in capsys.readouterr().err
    notes = json.loads((out / "metrics.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith("client 1:")
