"""One entry of a device's signed privacy ledger, and the bytes that are hashed and signed.

An entry is one round's DP-SGD event with everything needed to account for it on its own
(σ, q, steps, clipping norm, δ, sampler, accountant), where it sits (client, sequence number,
round, time) and the SHA-256 of the previous entry's bytes, which chains the entries. Its
canonical bytes (sorted-key compact JSON; floats in their shortest exact form) are what the
device signs, what the Merkle tree hashes as a leaf and what the next entry chains to, so any
edit to a stored entry changes all three.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from emofl.common.privacy.events import DpEvent, Sampler

GENESIS = "0" * 64
"""The `prev_hash` of a ledger's first entry."""

SIGNING_CONTEXT = b"emofl privacy ledger entry v1\n"
"""Prefixed to an entry's bytes before signing, so an entry signature is never valid for
anything else the device signs (tree heads, updates)."""


@dataclass(frozen=True)
class LedgerEntry:
    """One round's DP-SGD event as the device recorded it (see the module docstring)."""

    client: int
    seq: int
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    delta: float
    sampler: str
    accountant: str
    recorded_at: float
    prev_hash: str

    def __post_init__(self) -> None:  # 1 and 1.0 must give the same bytes after storage
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))

    def body(self) -> bytes:
        """The canonical bytes: hashed as a Merkle leaf, chained to, and signed."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """SHA-256 of `body()`, hex: the next entry's `prev_hash`."""
        return hashlib.sha256(self.body()).hexdigest()

    def signed_message(self) -> bytes:
        return SIGNING_CONTEXT + self.body()

    @property
    def event(self) -> DpEvent:
        """The DP-SGD event this entry accounts for (ValueError for impossible values)."""
        return DpEvent(self.noise_multiplier, self.sample_rate, self.steps,
                       Sampler(self.sampler))

    @classmethod
    def from_dict(cls, data: Any) -> "LedgerEntry":
        """The entry `asdict` gave; ValueError naming a missing, unknown or mistyped field."""
        if not isinstance(data, dict):
            raise ValueError(f"an entry must be an object, got {type(data).__name__}")
        names = {f.name: f.type for f in fields(cls)}
        if set(data) != set(names):
            raise ValueError(f"entry fields differ: {sorted(set(data) ^ set(names))}")
        for name, kind in names.items():
            value = data[name]
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  if kind is float else type(value) is kind)
            if not ok:
                raise ValueError(f"entry field {name} is {type(value).__name__}, "
                                 f"expected {kind.__name__}")
        return cls(**data)
