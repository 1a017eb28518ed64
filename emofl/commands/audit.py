"""`emofl audit RUN_DIR`: verify every device's signed privacy ledger against the server's tree
heads and recompute its ε with two accountants; `emofl audit --empirical`: a one-run canary
audit of DP-SGD at a claimed ε. Either exits non-zero, one line per failure, when anything does
not check out."""

import argparse
import json
import sys
from pathlib import Path

from emofl.commands.options import bounded
from emofl.common.errors import UserError
from emofl.common.protocol.setting import AT_LEAST_ONE, OPEN_UNIT_INTERVAL, POSITIVE


class AuditFailed(UserError):
    """At least one check failed; the failures were printed one per line before."""


def add(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit", help="verify the devices' privacy ledgers and recompute their ε",
        description="Check every device's signed ledger against the tree heads the server "
        "kept (signatures, hash chain, Merkle roots, split views) and recompute ε with the "
        "accountant the device used and with dp-accounting's PLD accountant. Reads only.")
    audit.add_argument("run", metavar="RUN_DIR", nargs="?",
                       help="the run (or server) folder (not with --empirical)")
    audit.add_argument("--device", action="append", default=[], metavar="DEV",
                       help="a device's ledger file, or a folder of ledgers; repeatable "
                       "(default: the run's clients/ folder)")
    audit.add_argument("--json", action="store_true", help="print the audit as JSON")
    audit.add_argument("--report", metavar="HTML", help="also write an HTML report here")
    empirical = audit.add_argument_group(
        "empirical audit", "one simulated client's DP-SGD with canaries; the 95% one-run lower "
        "bound detects broken DP, it does not show that the claimed ε is tight")
    empirical.add_argument("--empirical", action="store_true", help="run the canary audit")
    empirical.add_argument("--claimed-epsilon", type=bounded(float, POSITIVE), default=8.0,
                           metavar="ε", help="the ε the DP-SGD's σ is set for (default 8)")
    empirical.add_argument("--delta", type=bounded(float, OPEN_UNIT_INTERVAL), default=1e-5,
                           metavar="δ", help="its δ (default 1e-5)")
    empirical.add_argument("--canaries", type=bounded(int, AT_LEAST_ONE), default=1000,
                           metavar="M", help="canary gradients, each in with probability ½")
    empirical.add_argument("--steps", type=bounded(int, AT_LEAST_ONE), default=100,
                           metavar="T", help="DP-SGD steps (default 100)")
    empirical.add_argument("--sample-rate", type=bounded(float, OPEN_UNIT_INTERVAL),
                           default=0.1, metavar="Q", help="Poisson sampling rate (default 0.1)")
    empirical.add_argument("--without-noise", action="store_true",
                           help="a self-check: the same DP-SGD with σ = 0; the audit must fail")
    audit.set_defaults(handler=_audit, printer=_print)


def _outside(report: Path, audited: list[Path]) -> None:
    """Refuse a report path inside what is audited: the audit never writes there."""
    target = report.resolve()
    for folder in audited:
        if target == folder.resolve() or folder.resolve() in target.parents:
            raise UserError(f"--report {report} lies inside {folder}, which is being audited; "
                            "write the report elsewhere")


def _audit(args: argparse.Namespace) -> dict:
    if args.empirical:
        if args.run or args.device or args.report:
            raise UserError("--empirical audits a fresh simulated client: give no RUN_DIR, "
                            "--device or --report with it")
        return _empirical(args)
    if not args.run:
        raise UserError("give the RUN_DIR to audit (or --empirical)")
    return _ledgers(args)


def _ledgers(args: argparse.Namespace) -> dict:
    from emofl.server.audit.report import audit_json, format_table, write_html
    from emofl.server.audit.run_audit import audit_run

    if args.report:
        _outside(Path(args.report), [Path(args.run), *map(Path, args.device)])
    audit = audit_run(args.run, args.device)
    if args.report:
        write_html(audit, Path(args.report))
    result = audit_json(audit)
    print(json.dumps(result, indent=2) if args.json else format_table(audit))
    for line in audit.failures:
        print(line, file=sys.stderr)
    if audit.failures:
        raise AuditFailed(f"{len(audit.failures)} check(s) failed; see the lines above")
    return result


def _empirical(args: argparse.Namespace) -> dict:
    from emofl.simulations.audit.empirical import empirical_audit, format_empirical

    audit = empirical_audit(claimed_epsilon=args.claimed_epsilon, delta=args.delta,
                            canaries=args.canaries, sample_rate=args.sample_rate,
                            steps=args.steps, noise=not args.without_noise)
    result = audit.to_dict()
    print(json.dumps(result, indent=2) if args.json else format_empirical(audit))
    if not audit.passed:
        raise AuditFailed(f"the one-run lower bound ε_lb={audit.bound.epsilon:.3f} exceeds the "
                          f"claimed ε={audit.claimed_epsilon:g}: this DP-SGD leaks more than "
                          "it claims")
    return result


def _print(result: dict) -> None:
    """Already printed by the handler (table or JSON), before any failure lines."""
