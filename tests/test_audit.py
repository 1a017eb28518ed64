"""`emofl audit`: a clean run passes with ε recomputed to 1e-9 and a PLD second opinion; each
kind of tampering is caught in a line naming the client, the entry or head and what is wrong;
bad input is one line; the audit never writes to what it audits."""

import hashlib
import re
import shutil

import pytest
from ledger_helpers import DELTA, EVENT, play_round, play_run, tamper

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.ledger_store import DeviceLedger, ledger_path
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.server.audit.run_audit import audit_run
from emofl.server.federated.checkpoint import Checkpoint, save_checkpoint


def _tree(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    play_run(run, rounds=3)
    return run


@pytest.fixture
def run(clean_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(clean_run, copy)
    return copy


def test_a_clean_run_passes_with_both_accountants_and_the_folder_untouched(clean_run, tmp_path,
                                                                            capsys):
    from emofl.cli import main

    before = _tree(clean_run)
    report = tmp_path / "report.html"
    assert main(["audit", str(clean_run), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "every check passed" in out and re.search(r"^\s+0\s+3\s+60\s", out, re.M)
    assert _tree(clean_run) == before
    page = report.read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "http" not in page
    audit = audit_run(clean_run)
    expected = PrivacyLedger("rdp", [EVENT.__class__(1.1, 0.05, 60)]).epsilon(DELTA)
    for client in audit.clients:
        assert client.epsilon_reported == pytest.approx(expected, abs=1e-9)
        assert abs(client.epsilon_recomputed - client.epsilon_reported) <= 1e-9
        assert 0.75 < client.epsilon_pld / client.epsilon_recomputed < 0.95
        assert [r["round"] for r in client.per_round] == [1, 2, 3]


def _failures(run) -> list[str]:
    return audit_run(run).failures


@pytest.mark.parametrize("sql, says", [
    ("UPDATE entries SET noise_multiplier = 2.0 WHERE seq = 1",
     "client 0: entry 1 (round 2): signature does not verify"),
    ("UPDATE entries SET sample_rate = 0.01 WHERE seq = 0",
     "client 0: entry 0 (round 1): signature does not verify"),
    ("DELETE FROM entries WHERE seq = 1",
     "client 0: entry 1 (round 3): sequence number 2, expected 1"),
    ("UPDATE entries SET seq = seq + 10; UPDATE entries SET seq = 11 - seq WHERE seq < 12",
     "client 0: entry 0 (round 2): first entry does not start the chain"),
    ("DELETE FROM entries WHERE seq = 2",
     "client 0: tree head of round 3 (size 3): the ledger is truncated, it holds 2 entries"),
])
def test_each_edit_of_a_ledger_is_named(run, sql, says):
    tamper(run, 0, sql)
    failures = _failures(run)
    assert any(line.startswith(says) for line in failures), failures
    assert all(line.startswith("client 0:") for line in failures)


def test_an_edit_is_caught_by_the_heads_even_when_the_device_re_signs_it(run):
    clients = run / "clients"
    ledger_path(clients, 0).unlink()
    device = DeviceLedger(clients, 0, "rdp", simulated_device_signer(clients, 0))
    for global_round in (1, 2, 3):  # the same rounds, re-signed, with less spent in round 2
        device.record(global_round, EVENT.__class__(1.1, 0.01 if global_round == 2 else 0.05,
                                                    20), max_grad_norm=1.0, delta=DELTA)
    device.close()
    failures = _failures(run)
    assert "client 0: tree head of round 2 (size 2): entries 0..1 of the ledger do not hash " \
           "to its root (an entry edited, deleted or reordered)" in failures


def test_a_ledger_forked_between_two_tree_heads_is_a_split_view(run):
    tamper(run, 0, "DELETE FROM entries WHERE seq = 2")
    play_round(run, 4, clients=(0,), event=EVENT.__class__(2.0, 0.05, 20))
    failures = _failures(run)
    assert ("client 0: split view: the tree heads of round 3 (size 3) and round 4 (size 3) "
            "are not consistent: no one ledger has both") in failures
    assert any("the server rejected it" in line for line in failures)


def test_a_reported_epsilon_below_the_recomputed_one_fails(run):
    play_round(run, 4, claim_offset=-0.5)
    failures = _failures(run)
    for client in (0, 1):
        assert any(line.startswith(f"client {client}: tree head of round 4: reported ε=")
                   and "is below the recomputed ε=" in line for line in failures)
        assert any(line.startswith(f"client {client}: reported ε=")
                   and "is below dp-accounting's PLD ε=" in line for line in failures)


def test_a_ledger_signed_by_another_devices_key_fails(run):
    clients = run / "clients"
    ledger_path(clients, 0).unlink()
    thief = DeviceLedger(clients, 0, "rdp", simulated_device_signer(clients, 1))
    for global_round in (1, 2, 3):
        thief.record(global_round, EVENT, max_grad_norm=1.0, delta=DELTA)
    thief.close()
    failures = _failures(run)
    assert any(line.startswith("client 0: the ledger names device key") for line in failures)
    assert "client 0: entry 0 (round 1): signature does not verify under the device's key" \
        in failures


def test_spending_over_the_budget_fails(run):
    save_checkpoint(run, Checkpoint(round=3, model_state={}, settings={"epsilon": 1.0}))
    assert any("over its budget of 1" in line for line in _failures(run))


def test_the_command_exits_non_zero_with_one_line_per_failure(run, capsys):
    from emofl.cli import main

    tamper(run, 1, "UPDATE entries SET steps = 2 WHERE seq = 0")
    ledger_path(run / "clients", 0).write_bytes(b"garbage" * 200)
    assert main(["audit", str(run), "--json"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("client 0: ") and "is not a readable privacy ledger" in lines[0]
    assert any(line.startswith("client 1: entry 0 (round 1): signature") for line in lines)
    assert lines[-1].startswith("emofl audit: error:") and "check(s) failed" in lines[-1]
    assert '"passed": false' in captured.out


def test_bad_input_is_one_line(tmp_path, capsys, run):
    from emofl.cli import main

    assert main(["audit", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"emofl audit: error: {tmp_path} is not an emofl run under DP: it has no "
        "tree_heads.sqlite, where the server keeps the devices' signed tree heads")
    ledger_path(run / "clients", 1).unlink()
    assert audit_run(run).failures == ["client 1: no ledger found for it"]
    assert main(["audit", str(run), "--report", str(run / "r.html")]) == 2
    assert "lies inside" in capsys.readouterr().err


def test_a_deployed_devices_ledger_is_audited_where_it_lives(run, tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    shutil.move(ledger_path(run / "clients", 1), device / "client_1.ledger.sqlite")
    audit = audit_run(run, [device])
    assert [c.client for c in audit.clients] == [1] and not audit.failures
    alone = audit_run(run, [device / "client_1.ledger.sqlite"])
    assert alone.clients[0].epsilon_reported == audit.clients[0].epsilon_reported
