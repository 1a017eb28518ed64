"""Auditing a run: every device's ledger checked against the server's tree heads, and its ε
recomputed and compared with what it claimed.

The run folder holds the server's `tree_heads.sqlite` (and, in a simulation, the devices'
ledgers under `clients/`); a deployed device's ledger is given with `devices`. All of it is
read from private copies. A client audits clean only when every check passes: its ledger's
entries are signed by its key and chained, every tree head it signed is reproduced by its
ledger, no two of its heads fork, every claimed ε equals the one recomputed with its
accountant (to 1e-9) and is not below dp-accounting's PLD value, and it is within its budget.
"""

from dataclasses import dataclass, field
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.privacy.ledger import LedgerError
from emofl.common.privacy.ledger_db import read_ledger
from emofl.common.privacy.signed_ledger import SignedEntry, ledger_of
from emofl.server.audit.epsilon import PLD_DISCRETIZATION, pld_epsilon
from emofl.server.audit.ledger_checks import (
    VerifiedHead,
    entry_failures,
    head_failures,
    verified_heads,
)
from emofl.server.federated.checkpoint import load_checkpoint
from emofl.server.federated.tree_heads import TREE_HEADS_FILE, StoredHead, read_book

CLAIM_TOLERANCE = 1e-9  # the device computed its claim with the same accountant and events
LEDGER_GLOB = "client_*.ledger.sqlite"


class NotARunError(UserError):
    """The folder to audit holds no tree heads: it is not a run, or not one under DP."""


@dataclass
class ClientAudit:
    """One client's row of the audit, the ε it claimed round by round, and its failures."""

    client: int
    rounds: int = 0
    steps: int = 0
    sigma: tuple[float, float] | None = None
    sample_rate: tuple[float, float] | None = None
    accountant: str = ""
    delta: float | None = None
    epsilon_reported: float | None = None
    epsilon_recomputed: float | None = None
    epsilon_pld: float | None = None
    budget: float | None = None
    per_round: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "ok" if not self.failures else f"FAIL ({len(self.failures)})"


@dataclass
class Audit:
    run: str
    clients: list[ClientAudit]
    pld_discretization: float

    @property
    def failures(self) -> list[str]:
        return [line for client in self.clients for line in client.failures]


def ledger_files(run: Path, devices: list[Path]) -> list[Path]:
    """The ledgers to audit: those of `devices` (files, or folders of ledgers) when given,
    else every ledger in the run's `clients/` folder."""
    if not devices:
        return sorted((run / "clients").glob(LEDGER_GLOB))
    found = []
    for device in devices:
        found += sorted(device.glob(LEDGER_GLOB)) if device.is_dir() else [device]
    return found


def audit_run(run_dir: str | Path, devices: list[str | Path] = (),
              discretization: float = PLD_DISCRETIZATION) -> Audit:
    """Audit the run in `run_dir` (see the module docstring); NotARunError for a folder
    without tree heads."""
    run = Path(run_dir)
    if not (run / TREE_HEADS_FILE).is_file():
        raise NotARunError(f"{run} is not an emofl run under DP: it has no {TREE_HEADS_FILE}, "
                           "where the server keeps the devices' signed tree heads")
    keys, heads = read_book(run)
    checkpoint = load_checkpoint(run)
    budget = float(checkpoint.settings["epsilon"]) if checkpoint else None
    ledgers, unreadable = {}, {}
    for path in ledger_files(run, [Path(d) for d in devices]):
        try:
            info, entries = read_ledger(path)
            ledgers[int(info["client"])] = (info, entries)
        except (LedgerError, KeyError, ValueError) as err:
            unreadable[_client_named(path)] = f"client {_client_named(path)}: {err}"
    found = set(ledgers) | set(unreadable)
    clients = sorted(found if devices else {h.client for h in heads} | found)
    audits = [_audit_client(c, keys.get(c), [h for h in heads if h.client == c],
                            ledgers.get(c), budget, discretization) for c in clients]
    for audit in audits:
        if audit.client in unreadable:
            audit.failures = [unreadable[audit.client]]
    return Audit(str(run), audits, discretization)


def _client_named(path: Path) -> int:
    """The client id in a ledger's file name (client_3.ledger.sqlite), -1 if none."""
    number = path.name.removeprefix("client_").split(".")[0]
    return int(number) if number.isdigit() else -1


def _audit_client(client: int, key: str | None, heads: list[StoredHead],
                  ledger: tuple[dict, list[SignedEntry]] | None, budget: float | None,
                  discretization: float) -> ClientAudit:
    row = ClientAudit(client=client, budget=budget)
    if ledger is None:
        row.failures.append(f"client {client}: no ledger found for it")
        return row
    if key is None:
        row.failures.append(f"client {client}: the server holds no key and no tree head for it")
        return row
    info, entries = ledger
    row.accountant = info.get("accountant", "")
    signed, row.failures = verified_heads(client, key, heads)
    row.failures += entry_failures(client, key, info.get("device_key", ""), entries)
    row.failures += head_failures(client, entries, signed)
    _describe(row, entries)
    if not row.failures:
        _check_claims(row, entries, [h for h in signed if not h.stored.verdict], discretization)
    return row


def _describe(row: ClientAudit, entries: list[SignedEntry]) -> None:
    if not entries:
        return
    sigmas = [e.entry.noise_multiplier for e in entries]
    rates = [e.entry.sample_rate for e in entries]
    row.rounds, row.steps = len(entries), sum(e.entry.steps for e in entries)
    row.sigma, row.sample_rate = (min(sigmas), max(sigmas)), (min(rates), max(rates))


def _check_claims(row: ClientAudit, entries: list[SignedEntry], heads: list[VerifiedHead],
                  discretization: float) -> None:
    """Each head's claimed ε against the accountant's; the last one also against PLD's."""
    for head in heads:
        claim = head.checkpoint
        ledger = ledger_of(entries[:claim.size], row.accountant)
        recomputed = ledger.epsilon(claim.delta)
        row.per_round.append({"round": head.stored.round, "size": claim.size,
                              "reported": claim.epsilon, "recomputed": recomputed})
        where = f"client {row.client}: tree head of round {head.stored.round}"
        if abs(claim.epsilon - recomputed) > CLAIM_TOLERANCE:
            below = " is below" if claim.epsilon < recomputed else " differs from"
            row.failures.append(f"{where}: reported ε={claim.epsilon:.9g}{below} the "
                                f"recomputed ε={recomputed:.9g} ({row.accountant})")
    if not heads:
        return
    last = heads[-1].checkpoint
    row.delta, row.epsilon_reported = last.delta, last.epsilon
    row.epsilon_recomputed = row.per_round[-1]["recomputed"]
    events = ledger_of(entries[:last.size], row.accountant).events
    row.epsilon_pld = pld_epsilon(events, last.delta, discretization)
    if last.epsilon < row.epsilon_pld - discretization:
        row.failures.append(f"client {row.client}: reported ε={last.epsilon:.6g} is below "
                            f"dp-accounting's PLD ε={row.epsilon_pld:.6g}")
    if row.budget is not None and row.epsilon_recomputed > row.budget + CLAIM_TOLERANCE:
        row.failures.append(f"client {row.client}: spent ε={row.epsilon_recomputed:.6g}, over "
                            f"its budget of {row.budget:g}")
