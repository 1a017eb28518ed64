"""The device's privacy ledger on disk: an append-only SQLite table of signed entries.

One database per device. The journal is WAL with synchronous=FULL, so an entry the device has
committed survives a power cut; triggers refuse UPDATE and DELETE on entries, and an append
checks the sequence number and hash chain against the last entry. None of that stops someone
with the file from editing it (the triggers can be dropped): the signatures, the chain and the
tree heads the server keeps are what make an edit evident. Readers other than the device (the
auditor) open a private copy, so that reading never writes to what it reads.
"""

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emofl.common.privacy.ledger import LedgerError
from emofl.common.privacy.ledger_entry import GENESIS, LedgerEntry
from emofl.common.privacy.signed_ledger import SignedEntry

FORMAT_VERSION = "3"
_COLUMNS = ("client", "seq", "round", "noise_multiplier", "sample_rate", "steps",
            "max_grad_norm", "delta", "sampler", "accountant", "recorded_at", "prev_hash")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY, client INTEGER NOT NULL, round INTEGER NOT NULL,
    noise_multiplier REAL NOT NULL, sample_rate REAL NOT NULL, steps INTEGER NOT NULL,
    max_grad_norm REAL NOT NULL, delta REAL NOT NULL, sampler TEXT NOT NULL,
    accountant TEXT NOT NULL, recorded_at REAL NOT NULL, prev_hash TEXT NOT NULL,
    signature BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_append_only_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS info_write_once BEFORE UPDATE ON ledger_info
    BEGIN SELECT RAISE(ABORT, 'the ledger''s identity is written once'); END;
"""
_SELECT = f"SELECT {', '.join(_COLUMNS)}, signature FROM entries ORDER BY seq"


def open_for_append(path: Path, info: dict[str, str]) -> sqlite3.Connection:
    """The device's connection to its ledger (created with `info` when new: client,
    device_key, accountant); LedgerError when the file is not this device's ledger."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise LedgerError(f"{path}: the file system does not support a WAL journal")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO ledger_info VALUES ('format_version', ?)",
                     (FORMAT_VERSION,))
        conn.executemany("INSERT OR IGNORE INTO ledger_info VALUES (?, ?)", info.items())
        stored = dict(conn.execute("SELECT key, value FROM ledger_info"))
    except sqlite3.DatabaseError as err:
        raise LedgerError(f"{path} is not a privacy ledger database ({err})") from None
    wrong = sorted(k for k, v in info.items() if stored.get(k) != v)
    if stored["format_version"] != FORMAT_VERSION or wrong:
        conn.close()
        raise LedgerError(f"{path} is another ledger (its {', '.join(wrong) or 'format'} "
                          "differs from this device's)")
    return conn


def append(conn: sqlite3.Connection, entry: LedgerEntry, signature: bytes) -> None:
    """Commit one signed entry, refusing one that does not extend the stored ledger."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute(f"{_SELECT} DESC LIMIT 1").fetchone()
        expected_seq = 0 if last is None else last[1] + 1
        expected_prev = GENESIS if last is None else _entry(last).entry.digest()
        if entry.seq != expected_seq or entry.prev_hash != expected_prev:
            raise LedgerError(f"entry {entry.seq} does not extend the ledger "
                              f"(next is {expected_seq})")
        values = [getattr(entry, name) for name in _COLUMNS]
        conn.execute(f"INSERT INTO entries ({', '.join(_COLUMNS)}, signature) VALUES "
                     f"({', '.join('?' * (len(_COLUMNS) + 1))})", (*values, signature))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def entries(conn: sqlite3.Connection) -> list[SignedEntry]:
    """Every entry in sequence order, exactly as stored."""
    return [_entry(row) for row in conn.execute(_SELECT)]


def _entry(row: tuple) -> SignedEntry:
    return SignedEntry(LedgerEntry(*row[:-1]), bytes(row[-1]))


@contextmanager
def snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a private copy of the database at `path` and its WAL (what a reader
    who must not write next to the file opens); LedgerError when there is no file."""
    if not path.is_file():
        raise LedgerError(f"no database at {path}")
    with tempfile.TemporaryDirectory(prefix="emofl-audit-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        conn = sqlite3.connect(copy)
        try:
            yield conn
        finally:
            conn.close()


def read_ledger(path: Path) -> tuple[dict[str, str], list[SignedEntry]]:
    """(identity, entries) of the ledger at `path`, read from a `snapshot`; LedgerError,
    naming the file, when it is missing or not a ledger."""
    if not path.is_file():
        raise LedgerError(f"no privacy ledger at {path}")
    with snapshot(path) as conn:
        try:
            info = dict(conn.execute("SELECT key, value FROM ledger_info"))
            return info, entries(conn)
        except (sqlite3.DatabaseError, TypeError, ValueError) as err:
            raise LedgerError(f"{path} is not a readable privacy ledger ({err})") from None
