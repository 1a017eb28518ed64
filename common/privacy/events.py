"""DP-SGD events as values, and the neighbouring relation their ε is for.

As in Google's dp-accounting, an event is a frozen value: what one stretch of DP-SGD ran
(noise multiplier σ, sampling rate q, number of steps, sampler), checked when it is made and
never changed afterwards, so a ledger's history is a plain list anyone can recompute ε from.
This module imports neither torch nor Opacus: the CLI reads `ACCOUNTANTS` at start-up.
"""

import math
from dataclasses import dataclass, fields
from enum import Enum, StrEnum
from typing import Any

ACCOUNTANTS = ("rdp", "prv")  # Opacus' accountants for Poisson-subsampled Gaussian events


class Sampler(StrEnum):
    """How each step's batch was drawn; Opacus' RDP and PRV accountants assume Poisson."""

    POISSON = "poisson"


class NeighbouringRelation(Enum):
    """Which pairs of data sets (ε, δ)-DP makes indistinguishable."""

    ADD_OR_REMOVE_ONE = "add_or_remove_one"
    """Sample-level: one face image of one client's local data set added or removed."""

    def describe(self) -> str:
        """The relation in words, as model cards state it."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {NeighbouringRelation.ADD_OR_REMOVE_ONE: "add/remove one example (sample-level)"}

ACCOUNTED_RELATION = NeighbouringRelation.ADD_OR_REMOVE_ONE
"""The relation Opacus' accountants, and so every ledger's ε, are for."""


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class DpEvent:
    """`steps` DP-SGD steps with noise multiplier σ at sampling rate q.

    Raises ValueError (one line, naming the field) unless σ >= 0, 0 < q <= 1 and steps >= 1.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int
    sampler: Sampler = Sampler.POISSON

    def __post_init__(self) -> None:
        sigma = _number("noise_multiplier", self.noise_multiplier)
        rate = _number("sample_rate", self.sample_rate)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"noise_multiplier must be finite and >= 0, got {sigma}")
        if not 0 < rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {rate}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        try:
            sampler = Sampler(self.sampler)
        except ValueError:
            raise ValueError(f"sampler must be one of {[s.value for s in Sampler]}, "
                             f"got {self.sampler!r}") from None
        object.__setattr__(self, "noise_multiplier", sigma)
        object.__setattr__(self, "sample_rate", rate)
        object.__setattr__(self, "sampler", sampler)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data (the sampler by its name)."""
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
                "steps": self.steps, "sampler": self.sampler.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DpEvent":
        """The event `to_dict` wrote; ValueError for unknown or missing keys or bad values."""
        if not isinstance(data, dict):
            raise ValueError(f"an event must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names[:3] if n not in data]  # the sampler has a default
        if unknown:
            raise ValueError(f"unknown event key(s) {', '.join(unknown)}")
        if missing:
            raise ValueError(f"missing event key(s) {', '.join(missing)}")
        return cls(**data)
