"""A device's ledger as signed entries: how it travels, and what makes it intact.

The device sends its whole ledger with every reply as an export (the device's verifier key and
every entry with its signature); the server and the auditor check it with the same functions
here: every signature under the device's key, sequence numbers 0, 1, 2, ..., the hash chain,
and the client named in every entry. Nothing stored beside an entry is trusted: leaf hashes
and chain hashes are always recomputed from the entries' bytes.
"""

import base64
import binascii
from dataclasses import asdict, dataclass
from typing import Any

from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.privacy.ledger_entry import GENESIS, LedgerEntry
from emofl.common.privacy.merkle import leaf_hash, root_of
from emofl.common.privacy.signing import signature_is_valid

EXPORT_VERSION = 3
"""Version of the ledger a reply carries; versions 1 and 2 were unsigned JSON states."""


@dataclass(frozen=True)
class SignedEntry:
    """An entry and the device's Ed25519 signature of its `signed_message()`."""

    entry: LedgerEntry
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.entry), "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_dict(cls, data: Any) -> "SignedEntry":
        if not isinstance(data, dict) or not isinstance(data.get("signature"), str):
            raise ValueError("a signed entry needs a base64 signature")
        fields = {k: v for k, v in data.items() if k != "signature"}
        try:
            signature = base64.b64decode(data["signature"], validate=True)
        except binascii.Error:
            raise ValueError("an entry's signature is not base64") from None
        return cls(LedgerEntry.from_dict(fields), signature)


def export_ledger(device_key: str, entries: list[SignedEntry]) -> dict[str, Any]:
    """The ledger as a reply carries it."""
    return {"format_version": EXPORT_VERSION, "device_key": device_key,
            "entries": [e.to_dict() for e in entries]}


def parse_export(data: Any) -> tuple[str, list[SignedEntry]]:
    """(device key, entries) of an export; ValueError saying what is malformed."""
    if not isinstance(data, dict) or data.get("format_version") != EXPORT_VERSION:
        raise ValueError(f"the ledger is not a signed ledger of format {EXPORT_VERSION}")
    if set(data) != {"format_version", "device_key", "entries"}:
        raise ValueError("the signed ledger's keys are not format_version, device_key, entries")
    if not isinstance(data["device_key"], str) or not isinstance(data["entries"], list):
        raise ValueError("the signed ledger's device_key or entries are mistyped")
    entries = []
    for index, item in enumerate(data["entries"]):
        try:
            entries.append(SignedEntry.from_dict(item))
        except ValueError as err:
            raise ValueError(f"entry {index}: {err}") from None
    return data["device_key"], entries


def entry_problems(entries: list[SignedEntry], public_key: bytes, client: int) -> list[str]:
    """One line per entry that is not intact: "entry 3 (round 4): <what is wrong>"."""
    problems = []
    previous = GENESIS
    for index, signed in enumerate(entries):
        entry = signed.entry
        where = f"entry {index} (round {entry.round})"
        if not signature_is_valid(public_key, entry.signed_message(), signed.signature):
            problems.append(f"{where}: signature does not verify under the device's key")
        if entry.seq != index:
            problems.append(f"{where}: sequence number {entry.seq}, expected {index} "
                            "(an entry deleted, reordered or inserted)")
        if entry.prev_hash != previous:
            problems.append(f"{where}: hash chain broken (prev_hash does not match entry "
                            f"{index - 1})" if index else f"{where}: first entry does not "
                            "start the chain")
        if entry.client != client:
            problems.append(f"{where}: names client {entry.client}")
        try:
            _ = entry.event  # σ, q, steps and sampler must make an event
        except ValueError as err:
            problems.append(f"{where}: {err}")
        previous = entry.digest()
    return problems


def merkle_leaves(entries: list[SignedEntry]) -> list[bytes]:
    """The Merkle leaf hashes, recomputed from each entry's bytes."""
    return [leaf_hash(e.entry.body()) for e in entries]


def merkle_root(entries: list[SignedEntry]) -> bytes:
    return root_of(merkle_leaves(entries))


def ledger_of(entries: list[SignedEntry], accountant: str) -> PrivacyLedger:
    """The events of `entries` as a `PrivacyLedger` (what ε is computed from)."""
    ledger = PrivacyLedger(accountant)
    for signed in entries:
        ledger.record(signed.entry.event)
    return ledger


def ledger_origin(client: int) -> str:
    """The name of client `client`'s ledger: its tree heads' origin and its signer's name."""
    return f"emofl/privacy-ledger/client-{client}"
