"""Where a device keeps its own privacy ledger between rounds and across restarts.

The device, not the server, is the owner of its budget: the ledger is a small JSON file in
the device's state directory, written atomically after every round it trains.
"""

import json
from pathlib import Path

from emofl.common.privacy.accounting import PrivacyLedger
from emofl.common.storage import atomic_io


def ledger_path(state_dir: str | Path, client_id: int) -> Path:
    return Path(state_dir) / f"client_{client_id}.json"


def load_ledger(state_dir: str | Path, client_id: int, accountant: str) -> PrivacyLedger:
    """The saved ledger, or an empty one for a client that has not trained yet."""
    path = ledger_path(state_dir, client_id)
    if not path.exists():
        return PrivacyLedger(accountant=accountant)
    ledger = PrivacyLedger.from_dict(json.loads(path.read_text()))
    if ledger.accountant != accountant:
        raise ValueError(f"{path} was accounted with {ledger.accountant}, not {accountant}")
    return ledger


def save_ledger(state_dir: str | Path, client_id: int, ledger: PrivacyLedger) -> None:
    atomic_io.write_json(ledger_path(state_dir, client_id), ledger.to_dict())
