"""A client's privacy budget: the DP-SGD events it has spent, and ε derived from them.

Following Opacus' accountants, the state is nothing but the history of events, saved and
loaded through one API (`state_dict` / `from_state_dict`). ε for the whole history is
computed by a fresh Opacus accountant loaded with that history, so the budget a client
reports is cumulative over every round it took part in, and an auditor can recompute it from
the saved state alone.

Guarantee: sample-level (ε, δ)-DP for the client's local data set under the add/remove-one
neighbouring relation (Poisson subsampling, as in Opacus' RDP and PRV accountants).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opacus.accountants import create_accountant

from emofl.common.errors import UserError
from emofl.common.privacy.events import ACCOUNTANTS, ACCOUNTED_RELATION, DpEvent

FORMAT_VERSION = 2
"""Version of `PrivacyLedger.state_dict()`; version 1 was `{"accountant", "history"}` with
events as `[σ, q, steps]` lists, which `from_state_dict` still reads."""

_STATE_KEYS = ("format_version", "accountant", "neighbouring_relation", "events")
_V1_KEYS = ("accountant", "history")


class LedgerError(UserError):
    """A saved ledger state that cannot be loaded; the message says what is wrong."""


@dataclass
class PrivacyLedger:
    """The DP-SGD events one client has spent, and the accountant that turns them into ε."""

    accountant: str = "rdp"
    events: list[DpEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"unknown accountant {self.accountant!r}; use one of {ACCOUNTANTS}")

    @property
    def steps(self) -> int:
        return sum(event.steps for event in self.events)

    def epsilon(self, delta: float, extra: Sequence[DpEvent] = ()) -> float:
        """ε after the recorded events (plus `extra` events, to ask "what if")."""
        events = [*self.events, *extra]
        if not events:
            return 0.0
        accountant = create_accountant(mechanism=self.accountant)
        accountant.load_state_dict({
            "history": [(e.noise_multiplier, e.sample_rate, e.steps) for e in events],
            "mechanism": self.accountant,
        })
        return float(accountant.get_epsilon(delta=delta))

    def record(self, event: DpEvent) -> None:
        """Append one round's event, merging it with an identical (but for steps) last one."""
        last = self.events[-1] if self.events else None
        if last is not None and replace(last, steps=event.steps) == event:
            self.events[-1] = replace(last, steps=last.steps + event.steps)
        else:
            self.events.append(event)

    def state_dict(self) -> dict[str, Any]:
        """The ledger as JSON-ready data: format version, accountant, relation, events."""
        return {
            "format_version": FORMAT_VERSION,
            "accountant": self.accountant,
            "neighbouring_relation": ACCOUNTED_RELATION.value,
            "events": [event.to_dict() for event in self.events],
        }

    @classmethod
    def from_state_dict(cls, state: Any) -> "PrivacyLedger":
        """The ledger `state_dict` saved (or a version-1 one, migrated); LedgerError otherwise."""
        if not isinstance(state, dict):
            raise LedgerError(f"a ledger state must be a JSON object, got {type(state).__name__}")
        if "format_version" not in state:
            if set(state) == set(_V1_KEYS):
                return cls._from_v1(state)
            raise LedgerError("a ledger state needs format_version (or the version-1 keys "
                              "accountant and history only)")
        if state["format_version"] != FORMAT_VERSION:
            raise LedgerError(f"unsupported ledger format version {state['format_version']!r} "
                              f"(expected {FORMAT_VERSION})")
        _check_keys(state, _STATE_KEYS)
        if state["neighbouring_relation"] != ACCOUNTED_RELATION.value:
            raise LedgerError(f"ledger neighbouring relation {state['neighbouring_relation']!r} "
                              f"is not {ACCOUNTED_RELATION.value!r}, the only one accounted")
        return cls._of(state["accountant"], state["events"], DpEvent.from_dict)

    @classmethod
    def _from_v1(cls, state: dict[str, Any]) -> "PrivacyLedger":
        def event_of(entry: Any) -> DpEvent:
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise ValueError(f"expected [sigma, q, steps], got {entry!r}")
            return DpEvent(*entry)

        return cls._of(state["accountant"], state["history"], event_of)

    @classmethod
    def _of(cls, accountant: Any, entries: Any,
            event_of: Callable[[Any], DpEvent]) -> "PrivacyLedger":
        if accountant not in ACCOUNTANTS:
            raise LedgerError(f"unknown ledger accountant {accountant!r}; use one of "
                              f"{ACCOUNTANTS}")
        if not isinstance(entries, list):
            raise LedgerError(f"ledger events must be a list, got {type(entries).__name__}")
        events = []
        for index, entry in enumerate(entries):
            try:
                events.append(event_of(entry))
            except (TypeError, ValueError) as err:
                raise LedgerError(f"ledger event {index}: {err}") from None
        return cls(accountant, events)


def _check_keys(state: dict[str, Any], expected: Sequence[str]) -> None:
    unknown = sorted(set(state) - set(expected))
    missing = [key for key in expected if key not in state]
    if unknown:
        raise LedgerError(f"unknown ledger key(s) {', '.join(map(str, unknown))}")
    if missing:
        raise LedgerError(f"missing ledger key(s) {', '.join(missing)}")
