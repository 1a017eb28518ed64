"""A client's privacy budget: DP-SGD events recorded as plain data, ε derived from them.

Following Opacus' accountants and Google's dp-accounting, the state is nothing but the
history of `(noise_multiplier, sample_rate, steps)` events. ε for the whole history is
computed by a fresh Opacus accountant fed that history, so the budget a client reports
is cumulative over every round it took part in, and an auditor can recompute it from the
saved history alone.

Guarantee: sample-level (ε, δ)-DP for the client's local data set under the add/remove-one
neighbouring relation (Poisson subsampling, as in Opacus' RDP and PRV accountants).
"""

from dataclasses import dataclass, field

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

ACCOUNTANTS = ("rdp", "prv")
NEIGHBOURING_RELATION = "add/remove one example (sample-level)"

Event = tuple[float, float, int]


@dataclass
class PrivacyLedger:
    """The DP-SGD events one client has spent, and the accountant that turns them into ε."""

    accountant: str = "rdp"
    history: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"unknown accountant {self.accountant!r}; use one of {ACCOUNTANTS}")
        self.history = [(float(s), float(q), int(n)) for s, q, n in self.history]

    @property
    def steps(self) -> int:
        return sum(n for _, _, n in self.history)

    def epsilon(self, delta: float, extra: list[Event] | None = None) -> float:
        """ε after the recorded history (plus `extra` events, to ask "what if")."""
        events = self.history + (extra or [])
        if not events:
            return 0.0
        acc = create_accountant(mechanism=self.accountant)
        acc.history = list(events)
        return float(acc.get_epsilon(delta=delta))

    def record(self, noise_multiplier: float, sample_rate: float, steps: int) -> None:
        """Append one round's DP-SGD steps, merging with an identical last event."""
        if steps <= 0:
            return
        if self.history and self.history[-1][:2] == (noise_multiplier, sample_rate):
            sigma, q, n = self.history[-1]
            self.history[-1] = (sigma, q, n + steps)
        else:
            self.history.append((float(noise_multiplier), float(sample_rate), int(steps)))

    def to_dict(self) -> dict:
        return {"accountant": self.accountant, "history": [list(e) for e in self.history]}

    @classmethod
    def from_dict(cls, data: dict) -> "PrivacyLedger":
        return cls(accountant=data["accountant"], history=[tuple(e) for e in data["history"]])


def noise_for_budget(
    epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str
) -> float:
    """The smallest noise multiplier σ whose `total_steps` steps at `sample_rate` fit (ε, δ)."""
    if epsilon <= 0:
        raise ValueError(f"target epsilon must be positive, got {epsilon}")
    return float(
        get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=accountant,
            epsilon_tolerance=0.005,
        )
    )
