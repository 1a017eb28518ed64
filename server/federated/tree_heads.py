"""The server's book of every signed tree head the devices sent, and the checks made on receipt.

Each train reply under DP carries the device's whole signed ledger and a signed C2SP checkpoint
of it. The server re-hashes the entries (it trusts no hash it is given), checks every entry's
signature and the chain, that the head's size and root are those of the entries and that the
head extends the last head it accepted from that device (an RFC 9162 consistency proof from
the entries, verified against the stored head). Every head is stored, with the proof and the
verdict, in an append-only SQLite table (WAL, synchronous=FULL): the evidence an auditor
checks a device's ledger against later. A reply that fails is left out of the average.

Whose key is a device's: the enrolled key when the deployment has a registry (`DeviceKeys`);
in a simulation, the key a device first signed with, pinned then (trust on first use).
"""

import json
import sqlite3
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from emofl.common.privacy import ledger_db
from emofl.common.privacy.checkpoint_note import Checkpoint, NoteError, open_note
from emofl.common.privacy.checkpoint_note import parse_verifier_key as device_public_key
from emofl.common.privacy.ledger import LedgerError
from emofl.common.privacy.merkle import consistency_proof, root_of, verify_consistency
from emofl.common.privacy.signed_ledger import (
    entry_problems,
    ledger_origin,
    merkle_leaves,
    parse_export,
)

TREE_HEADS_FILE = "tree_heads.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_keys (client INTEGER PRIMARY KEY, device_key TEXT NOT NULL,
    pinned_round INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tree_heads (id INTEGER PRIMARY KEY AUTOINCREMENT,
    client INTEGER NOT NULL, round INTEGER NOT NULL, size INTEGER NOT NULL, note TEXT NOT NULL,
    previous_size INTEGER NOT NULL, consistency_proof TEXT NOT NULL, received_at REAL NOT NULL,
    verdict TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS heads_append_only_update BEFORE UPDATE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'the tree head book is append-only'); END;
CREATE TRIGGER IF NOT EXISTS heads_append_only_delete BEFORE DELETE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'the tree head book is append-only'); END;
CREATE TRIGGER IF NOT EXISTS keys_write_once BEFORE UPDATE ON device_keys
    BEGIN SELECT RAISE(ABORT, 'a device key is pinned once'); END;
"""


class DeviceKeys(Protocol):
    """Where a deployment's enrolled device keys come from (a C2SP verifier key, or None)."""

    def key_for(self, client_id: int) -> str | None: ...


class TreeHeadBook:
    """The tree heads received in one run folder (see the module docstring)."""

    def __init__(self, folder: str | Path, enrolled: DeviceKeys | None = None) -> None:
        self.path = Path(folder) / TREE_HEADS_FILE
        self.enrolled = enrolled
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    def device_key(self, client_id: int, offered: str, global_round: int) -> str:
        """The key client `client_id` must sign with: enrolled, pinned, or `offered` (pinned)."""
        if self.enrolled is not None:
            return self.enrolled.key_for(client_id) or ""
        row = self._conn.execute("SELECT device_key FROM device_keys WHERE client = ?",
                                 (client_id,)).fetchone()
        if row:
            return row[0]
        self._conn.execute("INSERT INTO device_keys VALUES (?, ?, ?)",
                           (client_id, offered, global_round))
        return offered

    def _last_accepted(self, client_id: int) -> Checkpoint | None:
        row = self._conn.execute("SELECT note FROM tree_heads WHERE client = ? AND verdict = '' "
                                 "ORDER BY id DESC LIMIT 1", (client_id,)).fetchone()
        return Checkpoint.parse(row[0].rpartition("\n\n")[0] + "\n") if row else None

    def receive(self, client_id: int, global_round: int, note: str, export: dict,
                claimed_epsilon: float) -> str:
        """Check and store one reply's tree head; the reason to reject the reply, or ""."""
        previous = self._last_accepted(client_id)
        size, prev_size, verdict = -1, previous.size if previous else 0, ""
        proof: list[bytes] | None = None  # None: the reply failed before a proof was made
        try:
            offered, entries = parse_export(export)
            key = self.device_key(client_id, offered, global_round)
            if not key or offered != key:
                raise ValueError("the ledger is not signed with the device's key")
            head = Checkpoint.parse(open_note(note, key))
            size, leaves = head.size, merkle_leaves(entries)
            problems = entry_problems(entries, device_public_key(key)[1], client_id)
            if problems:
                raise ValueError(problems[0])
            if head.origin != ledger_origin(client_id) or head.size != len(entries):
                raise ValueError(f"the tree head names {head.origin!r} at size {head.size}, "
                                 f"not client {client_id}'s ledger of {len(entries)} entries")
            if root_of(leaves) != head.root:
                raise ValueError("the tree head's root is not the root of the entries sent")
            if head.epsilon != claimed_epsilon:
                raise ValueError(f"the tree head claims ε={head.epsilon}, the reply "
                                 f"ε={claimed_epsilon}")
            if prev_size > head.size:
                raise ValueError(f"the ledger shrank from {prev_size} to {head.size} entries")
            proof = consistency_proof(leaves, prev_size)
            if not verify_consistency(prev_size, head.size, previous.root if previous else b"",
                                      head.root, proof):
                raise ValueError(f"the tree head does not extend the head of size {prev_size} "
                                 "accepted before (a rewritten ledger or a split view)")
        except (ValueError, NoteError) as err:
            verdict = f"tree head rejected: {err}"
        self._conn.execute(
            "INSERT INTO tree_heads (client, round, size, note, previous_size, "
            "consistency_proof, received_at, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (client_id, global_round, size, note, prev_size,
             json.dumps(proof and [b64encode(h).decode() for h in proof]), time.time(),
             verdict))
        return verdict

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class StoredHead:
    """One received tree head as the book keeps it; `proof` is None when none was made."""

    client: int
    round: int
    size: int
    note: str
    previous_size: int
    proof: list[bytes] | None
    verdict: str


def read_book(folder: str | Path) -> tuple[dict[int, str], list[StoredHead]]:
    """(pinned device keys, every stored head in the order received) of the book in `folder`,
    read from a private copy; LedgerError naming the file when it is missing or not a book."""
    path = Path(folder) / TREE_HEADS_FILE
    with ledger_db.snapshot(path) as conn:
        try:
            keys = dict(conn.execute("SELECT client, device_key FROM device_keys"))
            rows = conn.execute("SELECT client, round, size, note, previous_size, "
                                "consistency_proof, verdict FROM tree_heads ORDER BY id")
            heads = [StoredHead(*row[:5], _proof(row[5]), row[6]) for row in rows]
        except (sqlite3.DatabaseError, ValueError, TypeError) as err:
            raise LedgerError(f"{path} is not a readable tree head book ({err})") from None
    return keys, heads


def _proof(text: str) -> list[bytes] | None:
    hashes = json.loads(text)
    return None if hashes is None else [b64decode(h) for h in hashes]
