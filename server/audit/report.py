"""An audit as a person reads it: a table, the same rows as JSON, and a self-contained HTML page
with a plot of ε per client per round (a PNG inside the page, so it opens without a server)."""

import base64
import html
import io
import math
from pathlib import Path

from emofl.server.audit.run_audit import Audit, ClientAudit

COLUMNS = ("client", "rounds", "steps", "σ range", "q range", "ε reported", "ε recomputed",
           "ε PLD", "budget", "status")


def _range(values: tuple[float, float] | None) -> str:
    if values is None:
        return "-"
    low, high = values
    return f"{low:.4g}" if low == high else f"{low:.4g}–{high:.4g}"


def _number(value: float | None) -> str:
    return "-" if value is None else ("inf" if math.isinf(value) else f"{value:.4f}")


def table_rows(audit: Audit) -> list[list[str]]:
    return [[str(c.client), str(c.rounds), str(c.steps), _range(c.sigma), _range(c.sample_rate),
             _number(c.epsilon_reported),
             f"{_number(c.epsilon_recomputed)} {c.accountant}".strip(), _number(c.epsilon_pld),
             _number(c.budget), c.status] for c in audit.clients]


def format_table(audit: Audit) -> str:
    """The audit as an aligned text table, then one line saying whether it passed."""
    rows = [list(COLUMNS), *table_rows(audit)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
             for row in rows]
    failures = len(audit.failures)
    verdict = f"{failures} check(s) failed" if failures else "every check passed"
    return "\n".join([*lines, f"audit of {audit.run}: {len(audit.clients)} client(s), {verdict}"])


def _client_json(client: ClientAudit) -> dict:
    return {"client": client.client, "rounds": client.rounds, "steps": client.steps,
            "sigma_range": client.sigma, "sample_rate_range": client.sample_rate,
            "accountant": client.accountant, "delta": client.delta,
            "epsilon_reported": client.epsilon_reported,
            "epsilon_recomputed": client.epsilon_recomputed, "epsilon_pld": client.epsilon_pld,
            "budget": client.budget, "status": "ok" if not client.failures else "fail",
            "per_round": client.per_round, "failures": client.failures}


def audit_json(audit: Audit) -> dict:
    return {"run": audit.run, "pld_discretization": audit.pld_discretization,
            "passed": not audit.failures, "clients": [_client_json(c) for c in audit.clients],
            "failures": audit.failures}


def epsilon_plot_png(audit: Audit) -> bytes:
    """ε per client per round (claimed, as recomputed), and each client's final PLD ε."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for client in audit.clients:
        if client.per_round:
            rounds = [r["round"] for r in client.per_round]
            line, = axes.plot(rounds, [r["recomputed"] for r in client.per_round], marker="o",
                              label=f"client {client.client}")
            if client.epsilon_pld is not None and math.isfinite(client.epsilon_pld):
                axes.plot(rounds[-1], client.epsilon_pld, marker="x", color=line.get_color())
    budgets = {c.budget for c in audit.clients if c.budget is not None}
    for budget in budgets:
        axes.axhline(budget, color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="round", ylabel="cumulative ε", title="ε per client (x: PLD at the end)")
    if any(c.per_round for c in audit.clients):
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_html(audit: Audit, path: Path) -> None:
    """The audit as one HTML file: verdict, table, plot and every failure line."""
    from emofl.common.storage import atomic_io

    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in table_rows(audit))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    image = base64.b64encode(epsilon_plot_png(audit)).decode()
    failures = "".join(f"<li>{html.escape(line)}</li>" for line in audit.failures)
    verdict = "every check passed" if not audit.failures else f"{len(audit.failures)} failed"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>emofl privacy audit</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style></head>
<body><h1>Privacy audit</h1><p>{html.escape(audit.run)}: {verdict}. PLD by dp-accounting,
discretization {audit.pld_discretization:g}.</p>
<table><tr>{head}</tr>{cells}</table>
<p><img alt="epsilon per client per round" src="data:image/png;base64,{image}"></p>
<h2>Failures</h2><ul>{failures or "<li>none</li>"}</ul></body></html>
"""
    atomic_io.write_bytes(path, page.encode())
