"""ε recomputed from a ledger's events: by the accountant the device used, and by Google's
dp-accounting PLD accountant as an independent second opinion.

The PLD accountant (privacy loss distributions, pessimistic discretization) is the tightest
valid bound of the three and shares no code with Opacus; it is typically 10–17% below RDP.
Identical consecutive events are merged before composing (a ledger's `PrivacyLedger` already
does), and the discretization interval is 1e-3 for routine audits: tens of seconds become a
fraction of one, and ε moves by ~2e-4.
"""

import math
from functools import lru_cache

from emofl.common.privacy.events import DpEvent

PLD_DISCRETIZATION = 1e-3


def pld_epsilon(events: list[DpEvent], delta: float,
                discretization: float = PLD_DISCRETIZATION) -> float:
    """ε of the Poisson-subsampled Gaussian `events` composed, by dp-accounting's PLD
    accountant under add/remove-one (infinite when an event adds no noise)."""
    return _pld(tuple(events), delta, discretization)


@lru_cache(maxsize=256)
def _pld(events: tuple[DpEvent, ...], delta: float, discretization: float) -> float:
    if not events:
        return 0.0
    if any(e.noise_multiplier == 0 for e in events):
        return math.inf
    from dp_accounting import NeighboringRelation, dp_event  # heavy: only when auditing
    from dp_accounting.pld import PLDAccountant

    accountant = PLDAccountant(neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                               value_discretization_interval=discretization)
    for event in events:
        gaussian = dp_event.GaussianDpEvent(event.noise_multiplier)
        accountant.compose(dp_event.PoissonSampledDpEvent(event.sample_rate, gaussian),
                           event.steps)
    return float(accountant.get_epsilon(delta))
