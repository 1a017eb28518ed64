"""ε of a model's clients by three accountants: Opacus RDP, Opacus PRV and dp-accounting's PLD.

Usage: python -m emofl.simulations.benchmarks.accountants [--model FILE] [--delta 1e-5]
Reads each client's DP-SGD history from the model card (the shipped model's by default) and
prints one JSON row per client: σ, q, steps, ε by each accountant (PLD at the audit's routine
discretization 1e-3 and at 1e-4) and PLD/RDP — the independent second opinion `emofl audit`
gives, measured on real histories.
"""

import argparse
import json
from pathlib import Path

from emofl.common.model.frame_store import read_model_card
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.server.audit.epsilon import pld_epsilon


def compare(card: dict, delta: float) -> list[dict]:
    """One row per client of `card`'s privacy ledgers."""
    rows = []
    for client, state in sorted(card["privacy"]["ledgers"].items(), key=lambda kv: int(kv[0])):
        ledger = PrivacyLedger.from_state_dict(state)
        rdp = ledger.epsilon(delta)
        first = ledger.events[0]
        rows.append({
            "client": int(client), "sigma": first.noise_multiplier, "q": first.sample_rate,
            "steps": ledger.steps, "rdp": rdp,
            "prv": PrivacyLedger("prv", ledger.events).epsilon(delta),
            "pld_1e-3": pld_epsilon(ledger.events, delta),
            "pld_1e-4": pld_epsilon(ledger.events, delta, 1e-4),
        })
        rows[-1]["pld_over_rdp"] = rows[-1]["pld_1e-3"] / rdp
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("--delta", type=float, default=1e-5)
    args = parser.parse_args()
    for row in compare(read_model_card(args.model), args.delta):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
