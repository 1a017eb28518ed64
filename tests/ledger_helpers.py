"""Devices and a server keeping signed ledgers and tree heads, without training: the real
device ledger (SQLite, Ed25519) and the real server book, played round by round, and the ways
a ledger can be tampered with afterwards (the append-only triggers dropped, as anyone holding
the file can)."""

import sqlite3
from pathlib import Path

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.ledger_store import DeviceLedger, ledger_path
from emofl.common.privacy.events import DpEvent
from emofl.server.federated.checkpoint import Checkpoint, save_checkpoint
from emofl.server.federated.tree_heads import TreeHeadBook

DELTA = 1e-5
EVENT = DpEvent(1.1, 0.05, 20)


def play_round(run: Path, global_round: int, clients=(0, 1), event: DpEvent = EVENT,
               accountant: str = "rdp", claim_offset: float = 0.0) -> dict[int, str]:
    """Every client records `event` for the round and sends its head; the server's verdicts."""
    book = TreeHeadBook(run)
    verdicts = {}
    for client in clients:
        device = open_device(run, client, accountant)
        device.ledger.record(event)
        device.record(global_round, event, max_grad_norm=1.0, delta=DELTA)
        verdicts[client] = send_head(book, device, global_round, claim_offset)
        device.close()
    book.close()
    return verdicts


def open_device(run: Path, client: int, accountant: str = "rdp") -> DeviceLedger:
    clients = run / "clients"
    return DeviceLedger(clients, client, accountant, simulated_device_signer(clients, client))


def send_head(book: TreeHeadBook, device: DeviceLedger, global_round: int,
              claim_offset: float = 0.0) -> str:
    epsilon = device.ledger.epsilon(DELTA) + claim_offset
    return book.receive(device.client_id, global_round, device.tree_head(epsilon, DELTA),
                        device.export(), epsilon)


def play_run(run: Path, rounds: int = 3, clients=(0, 1), budget: float = 8.0) -> None:
    """A run's ledgers, tree heads and checkpoint (settings only: no model)."""
    for global_round in range(1, rounds + 1):
        assert set(play_round(run, global_round, clients).values()) == {""}
    save_checkpoint(run, Checkpoint(round=rounds, model_state={},
                                    settings={"epsilon": budget, "delta": DELTA}))


def tamper(run: Path, client: int, sql: str) -> None:
    """Run the statements `sql` on a client's ledger database as an attacker holding the file
    would."""
    conn = sqlite3.connect(ledger_path(run / "clients", client))
    for trigger in ("entries_append_only_update", "entries_append_only_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.executescript(sql)
    conn.commit()
    conn.close()
