"""Where a device keeps its own signed privacy ledger between rounds and across restarts.

The device, not the server, is the owner of its budget: its ledger is an append-only SQLite
database (`common/privacy/ledger_db.py`) in the device's state folder, one signed entry per
round it trains. After each round the device signs a tree head (the Merkle root and size of the
ledger, and the ε it claims) and sends it with the whole ledger, so the server can keep heads
that would expose any later rewrite. A JSON ledger of an earlier emofl is refused: signing its
history now would vouch for entries the device never signed.
"""

import time
from pathlib import Path

from emofl.common.privacy import ledger_db
from emofl.common.privacy.checkpoint_note import Checkpoint, sign_note, verifier_key
from emofl.common.privacy.events import DpEvent
from emofl.common.privacy.ledger import LedgerError, PrivacyLedger
from emofl.common.privacy.ledger_entry import GENESIS, LedgerEntry
from emofl.common.privacy.signed_ledger import (
    export_ledger,
    ledger_of,
    ledger_origin,
    merkle_root,
)
from emofl.common.privacy.signing import Signer
from emofl.common.storage import atomic_io


def ledger_path(state_dir: str | Path, client_id: int) -> Path:
    return Path(state_dir) / f"client_{client_id}.ledger.sqlite"


def _refuse_json_ledger(state_dir: str | Path, client_id: int) -> None:
    old = Path(state_dir) / f"client_{client_id}.json"
    if old.exists():
        raise LedgerError(f"{old} is an unsigned JSON ledger of an earlier emofl, which this "
                          "version cannot vouch for; finish that run with the emofl that "
                          "started it, or start a new run in another folder")


class DeviceLedger:
    """A device's open ledger: its events as a `PrivacyLedger`, and signed appends."""

    def __init__(self, state_dir: str | Path, client_id: int, accountant: str,
                 signer: Signer) -> None:
        _refuse_json_ledger(state_dir, client_id)
        self.client_id, self.accountant, self.signer = client_id, accountant, signer
        self.device_key = verifier_key(signer.name, signer.public_key)
        path = ledger_path(atomic_io.make_dir(state_dir), client_id)
        self._conn = ledger_db.open_for_append(path, {
            "client": str(client_id), "device_key": self.device_key, "accountant": accountant})
        self.entries = ledger_db.entries(self._conn)
        self.ledger: PrivacyLedger = ledger_of(self.entries, accountant)

    def record(self, global_round: int, event: DpEvent, max_grad_norm: float,
               delta: float) -> None:
        """Sign and commit one round's event (the in-memory `ledger` already holds it)."""
        previous = self.entries[-1].entry.digest() if self.entries else GENESIS
        entry = LedgerEntry(client=self.client_id, seq=len(self.entries), round=global_round,
                            noise_multiplier=event.noise_multiplier,
                            sample_rate=event.sample_rate, steps=event.steps,
                            max_grad_norm=max_grad_norm, delta=delta,
                            sampler=event.sampler.value, accountant=self.accountant,
                            recorded_at=time.time(), prev_hash=previous)
        signature = self.signer.sign(entry.signed_message())
        ledger_db.append(self._conn, entry, signature)
        self.entries = ledger_db.entries(self._conn)

    def export(self) -> dict:
        """The whole signed ledger, as the reply carries it."""
        return export_ledger(self.device_key, self.entries)

    def tree_head(self, epsilon: float, delta: float) -> str:
        """A signed C2SP checkpoint of the ledger as it is now, claiming (ε, δ)."""
        head = Checkpoint(ledger_origin(self.client_id), len(self.entries),
                          merkle_root(self.entries), epsilon, delta)
        return sign_note(head.text(), self.signer)

    def close(self) -> None:
        self._conn.close()


def load_ledger(state_dir: str | Path, client_id: int, accountant: str) -> PrivacyLedger:
    """The events of the saved ledger (empty for a client that has not trained yet), read
    without writing; LedgerError (one line, naming the file) when it is not a ledger or was
    accounted with another accountant."""
    _refuse_json_ledger(state_dir, client_id)
    path = ledger_path(state_dir, client_id)
    if not path.exists():
        return PrivacyLedger(accountant=accountant)
    info, entries = ledger_db.read_ledger(path)
    if info.get("accountant") != accountant:
        raise LedgerError(f"{path} was accounted with {info.get('accountant')}, "
                          f"not {accountant}")
    try:
        return ledger_of(entries, accountant)
    except ValueError as err:
        raise LedgerError(f"{path}: {err}") from None
