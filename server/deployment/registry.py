"""The enrollment registry: every device enrolled, its public keys, its consent, and whether it
was revoked. One SQLite file, `DIR/registry.sqlite`, written in transactions.

Node ids are Flower's unsigned 64-bit ids, kept as text (SQLite integers are signed). The
registry is the operator's record; Flower's SuperLink keeps its own list of node keys
(`--database`). Enrollment writes both, revocation updates both; the signing key recorded here
is the one the server verifies a device's signatures against.
"""

import base64
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.privacy.checkpoint_note import verifier_key
from emofl.common.privacy.signed_ledger import ledger_origin

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    node_id TEXT PRIMARY KEY,
    client_id INTEGER NOT NULL UNIQUE,
    device_name TEXT NOT NULL,
    node_public_key TEXT NOT NULL UNIQUE,
    sealing_public_key TEXT NOT NULL,
    signing_public_key TEXT NOT NULL UNIQUE,
    consent TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    revoked_at TEXT
)
"""
_COLUMNS = ("node_id", "client_id", "device_name", "node_public_key", "sealing_public_key",
            "signing_public_key", "consent", "enrolled_at", "revoked_at")


class RegistryError(UserError):
    """A registry operation the registry's contents do not allow (a device enrolled twice, an
    unknown node); the message names the node."""


@dataclass(frozen=True)
class DeviceRecord:
    """One enrolled device as the registry holds it: Flower's node id, the small client id the
    device reports in its replies and signs its ledger under, keys, consent (JSON text)."""

    node_id: int
    client_id: int
    device_name: str
    node_public_key: str
    sealing_public_key: str
    signing_public_key: str
    consent: str
    enrolled_at: str
    revoked_at: str | None = None


def _record(row: tuple) -> DeviceRecord:
    return DeviceRecord(int(row[0]), *row[1:])


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path)) as connection, connection:
        yield connection


def create_registry(path: str | Path) -> None:
    """Create an empty registry at `path`."""
    with _connect(Path(path)) as db:
        db.execute(SCHEMA)


def find_by_node_key(path: str | Path, node_public_key: str) -> DeviceRecord | None:
    with _connect(Path(path)) as db:
        row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM devices WHERE node_public_key = ?",
                         (node_public_key,)).fetchone()
    return _record(row) if row else None


def get_device(path: str | Path, node_id: int) -> DeviceRecord:
    """The device with `node_id`; RegistryError when none was enrolled."""
    with _connect(Path(path)) as db:
        row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM devices WHERE node_id = ?",
                         (str(node_id),)).fetchone()
    if row is None:
        raise RegistryError(f"node {node_id} is not enrolled on this server")
    return _record(row)


def add_device(path: str | Path, record: DeviceRecord) -> None:
    """Record a newly enrolled device; RegistryError if its node id or keys are taken."""
    try:
        with _connect(Path(path)) as db:
            db.execute(f"INSERT INTO devices ({', '.join(_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(_COLUMNS))})",
                       (str(record.node_id), *(getattr(record, c) for c in _COLUMNS[1:])))
    except sqlite3.IntegrityError:
        raise RegistryError(f"node {record.node_id} or its keys are already enrolled") from None


def mark_revoked(path: str | Path, node_id: int, when: str) -> None:
    """Record that `node_id` was revoked at `when` (kept as it was if already revoked)."""
    get_device(path, node_id)
    with _connect(Path(path)) as db:
        db.execute("UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE node_id = ?",
                   (when, str(node_id)))


def next_client_id(path: str | Path) -> int:
    """The client id the next enrolled device gets: one more than any so far (ids start at 0)."""
    with _connect(Path(path)) as db:
        (top,) = db.execute("SELECT MAX(client_id) FROM devices").fetchone()
    return 0 if top is None else top + 1


def list_devices(path: str | Path) -> list[DeviceRecord]:
    with _connect(Path(path)) as db:
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM devices ORDER BY node_id")
        return [_record(row) for row in rows.fetchall()]


class EnrolledKeys:
    """The registry as the tree-head book's source of device keys (`DeviceKeys`): a device's
    tree heads and ledger entries must be signed with the Ed25519 key it enrolled, never with a
    key it offers later; a revoked device has none."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def key_for(self, client_id: int) -> str | None:
        for device in list_devices(self.path):
            if device.client_id == client_id and device.revoked_at is None:
                raw = base64.b64decode(device.signing_public_key)
                return verifier_key(ledger_origin(client_id), raw)
        return None
