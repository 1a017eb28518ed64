"""The device's signed SQLite ledger and the server's book of tree heads: what is stored, how,
and which rewrites of a ledger the server notices when the device next replies."""

import base64
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from ledger_helpers import DELTA, EVENT, open_device, play_round, send_head, tamper

from emofl.client.federated.device_key import key_path, simulated_device_signer
from emofl.client.federated.ledger_store import DeviceLedger, ledger_path, load_ledger
from emofl.common.privacy import ledger_db
from emofl.common.privacy.ledger import LedgerError, PrivacyLedger
from emofl.common.privacy.ledger_entry import GENESIS
from emofl.server.deployment.registry import (
    DeviceRecord,
    EnrolledKeys,
    add_device,
    create_registry,
    mark_revoked,
)
from emofl.server.federated.tree_heads import TreeHeadBook


def test_the_ledger_is_an_append_only_wal_database_that_survives_reopening(tmp_path):
    play_round(tmp_path, 1)
    play_round(tmp_path, 2)
    path = ledger_path(tmp_path / "clients", 0)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sql in ("UPDATE entries SET steps = 1", "DELETE FROM entries WHERE seq = 1"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    device = open_device(tmp_path, 0)
    assert device._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert [(e.entry.seq, e.entry.round, e.entry.steps) for e in device.entries] == [
        (0, 1, 20), (1, 2, 20)]
    assert device.entries[0].entry.prev_hash == GENESIS
    assert device.entries[1].entry.prev_hash == device.entries[0].entry.digest()
    device.close()
    assert load_ledger(tmp_path / "clients", 0, "rdp") == PrivacyLedger("rdp", [
        EVENT.__class__(1.1, 0.05, 40)])
    assert stat.S_IMODE(key_path(tmp_path / "clients", 0).stat().st_mode) == 0o600


def test_an_append_that_does_not_extend_the_ledger_is_refused(tmp_path):
    play_round(tmp_path, 1)
    device = open_device(tmp_path, 0)
    stale = device.entries[0]
    with pytest.raises(LedgerError, match="does not extend the ledger"):
        ledger_db.append(device._conn, stale.entry, stale.signature)
    device.close()


def test_the_server_accepts_heads_that_extend_the_last_one_and_stores_each(tmp_path):
    for global_round in (1, 2, 3):
        assert play_round(tmp_path, global_round) == {0: "", 1: ""}
    book = TreeHeadBook(tmp_path)
    sizes = book._conn.execute("SELECT client, size, previous_size FROM tree_heads "
                               "ORDER BY id").fetchall()
    assert sizes == [(0, 1, 0), (1, 1, 0), (0, 2, 1), (1, 2, 1), (0, 3, 2), (1, 3, 2)]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        book._conn.execute("DELETE FROM tree_heads")


def _next_verdict(run, client=0, global_round=3, **kwargs) -> str:
    book = TreeHeadBook(run)
    device = open_device(run, client)
    verdict = send_head(book, device, global_round, **kwargs)
    device.close()
    return verdict


@pytest.mark.parametrize("sql, says", [
    ("UPDATE entries SET noise_multiplier = 2.5 WHERE seq = 0", "signature does not verify"),
    ("UPDATE entries SET sample_rate = 0.001 WHERE seq = 1", "signature does not verify"),
    ("DELETE FROM entries WHERE seq = 1", "the ledger shrank from 2 to 1"),
    ("UPDATE entries SET seq = seq + 10; UPDATE entries SET seq = 11 - seq",  # reordered
     "signature does not verify"),
])
def test_the_server_rejects_a_ledger_edited_between_rounds(tmp_path, sql, says):
    play_round(tmp_path, 1)
    play_round(tmp_path, 2)
    tamper(tmp_path, 0, sql)
    assert says in _next_verdict(tmp_path)


def test_the_server_rejects_a_history_rewritten_and_re_signed_by_the_device(tmp_path):
    play_round(tmp_path, 1)
    play_round(tmp_path, 2)
    (tmp_path / "clients" / "client_0.ledger.sqlite").unlink()  # a fresh, smaller history
    play_round(tmp_path, 1, clients=(0,), event=EVENT.__class__(3.0, 0.05, 20))
    assert "the ledger shrank from 2 to 1" in _next_verdict(tmp_path)
    play_round(tmp_path, 2, clients=(0,))
    assert "does not extend the head of size 2" in _next_verdict(tmp_path)


def test_the_server_rejects_a_ledger_signed_by_another_devices_key(tmp_path):
    play_round(tmp_path, 1)
    clients = tmp_path / "clients"
    for name in ("client_0.ledger.sqlite", "client_0.key"):
        (clients / name).unlink()
    other = DeviceLedger(clients, 0, "rdp", simulated_device_signer(clients, 1))
    other.ledger.record(EVENT)
    other.record(2, EVENT, max_grad_norm=1.0, delta=DELTA)
    verdict = send_head(TreeHeadBook(tmp_path), other, 2)
    assert "not signed with the device's key" in verdict


def test_the_server_rejects_a_head_whose_claim_is_not_the_replys(tmp_path):
    play_round(tmp_path, 1)
    book, device = TreeHeadBook(tmp_path), open_device(tmp_path, 0)
    epsilon = device.ledger.epsilon(DELTA)
    head = device.tree_head(epsilon - 0.5, DELTA)
    assert "the tree head claims" in book.receive(0, 2, head, device.export(), epsilon)


def test_a_json_ledger_of_an_earlier_emofl_is_refused_in_one_line(tmp_path):
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "client_0.json").write_text(json.dumps({"accountant": "rdp", "history": []}))
    for load in (lambda: load_ledger(clients, 0, "rdp"), lambda: open_device(tmp_path, 0)):
        with pytest.raises(LedgerError, match="unsigned JSON ledger of an earlier emofl") as err:
            load()
        assert "\n" not in str(err.value)


def test_a_corrupt_ledger_database_is_a_one_line_error_naming_it(tmp_path):
    path = ledger_path(tmp_path, 0)
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match="is not a") as err:
        load_ledger(tmp_path, 0, "rdp")
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def _enroll(registry: Path, client: int, key_file: Path) -> None:
    """Record `client` in a deployment's registry with the Ed25519 key in `key_file`."""
    public = load_pem_private_key(key_file.read_bytes(), password=None).public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    add_device(registry, DeviceRecord(
        node_id=100 + client, client_id=client, device_name=f"device {client}",
        node_public_key=f"node key {client}", sealing_public_key=f"sealing key {client}",
        signing_public_key=base64.b64encode(raw).decode(), consent="{}", enrolled_at="now"))


def test_a_deployment_checks_heads_against_the_enrolled_key_not_the_first_one_offered(tmp_path):
    clients, registry = tmp_path / "clients", tmp_path / "registry.sqlite"
    create_registry(registry)
    enrolled = simulated_device_signer(tmp_path / "enrolled", 0)  # the key the device enrolled
    _enroll(registry, 0, key_path(tmp_path / "enrolled", 0))
    impostor = DeviceLedger(clients, 0, "rdp", simulated_device_signer(clients, 0))
    impostor.ledger.record(EVENT)
    impostor.record(1, EVENT, max_grad_norm=1.0, delta=DELTA)
    book = TreeHeadBook(tmp_path, EnrolledKeys(registry))
    assert "not signed with the device's key" in send_head(book, impostor, 1)
    device = DeviceLedger(tmp_path / "device", 0, "rdp", enrolled)
    device.ledger.record(EVENT)
    device.record(1, EVENT, max_grad_norm=1.0, delta=DELTA)
    assert send_head(book, device, 1) == ""
    mark_revoked(registry, 100, "later")
    device.ledger.record(EVENT)
    device.record(2, EVENT, max_grad_norm=1.0, delta=DELTA)
    assert "not signed with the device's key" in send_head(book, device, 2)
