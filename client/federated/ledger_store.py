"""Where a device keeps its own privacy ledger between rounds and across restarts.

The device, not the server, is the owner of its budget: the ledger is a small JSON file (the
ledger's `state_dict`) in the device's state directory, written atomically after every round
it trains. A file in the older format loads and is rewritten in the current one.
"""

import json
from pathlib import Path

from emofl.common.privacy.ledger import LedgerError, PrivacyLedger
from emofl.common.storage import atomic_io


def ledger_path(state_dir: str | Path, client_id: int) -> Path:
    return Path(state_dir) / f"client_{client_id}.json"


def load_ledger(state_dir: str | Path, client_id: int, accountant: str) -> PrivacyLedger:
    """The saved ledger, or an empty one for a client that has not trained yet.

    LedgerError (one line, naming the file) when the file is not a ledger or was accounted
    with another accountant.
    """
    path = ledger_path(state_dir, client_id)
    if not path.exists():
        return PrivacyLedger(accountant=accountant)
    try:
        state = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LedgerError(f"{path} is not a JSON ledger file ({err})") from None
    try:
        ledger = PrivacyLedger.from_state_dict(state)
    except LedgerError as err:
        raise LedgerError(f"{path}: {err}") from None
    if ledger.accountant != accountant:
        raise LedgerError(f"{path} was accounted with {ledger.accountant}, not {accountant}")
    return ledger


def save_ledger(state_dir: str | Path, client_id: int, ledger: PrivacyLedger) -> None:
    atomic_io.write_json(ledger_path(state_dir, client_id), ledger.state_dict())
