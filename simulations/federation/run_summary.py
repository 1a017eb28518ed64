"""What a finished simulation reports: per-round accuracy, loss, ε and refusals, the files
written, and a warning when the model learned nothing."""

import json
from pathlib import Path

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.model.release import MODEL_FILE
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.round_recorder import METRICS_FILE
from emofl.simulations.federation.plots import plot_run

# A final accuracy below this multiple of chance (1/7) means the run learned nothing.
LEARNED_OVER_CHANCE = 1.5


def learning_warnings(settings: RunSettings, accuracy: float) -> list[str]:
    """Say so when the model ended at chance: DP-SGD from a random start needs far more
    steps and faces than a short run has (docs/benchmarks.md §9), and a newcomer should not
    have to find that out from the numbers."""
    chance = 1 / NUM_CLASSES
    if accuracy >= LEARNED_OVER_CHANCE * chance:
        return []
    start = f"from {settings.init_model}" if settings.init_model else "from a random start"
    return [f"the model ended at chance level ({accuracy:.1%}; chance is {chance:.1%}): "
            f"{settings.rounds} rounds {start} did not learn; start from a model pre-trained "
            "on public faces (`emofl pretrain`, then --init-model), as `emofl demo` does"]


def format_summary(summary: dict) -> str:
    """The end-of-run report a person reads: one line per round, then where the files are."""
    lines = [" round  accuracy   loss   max client ε  refused  wall s"]
    if summary["initial_accuracy"] is not None:
        lines.append(f"{'start':>6}  {summary['initial_accuracy']:>8.3f}")
    for r in summary["per_round"]:
        lines.append(f"{r['round']:>6}  {r['accuracy']:>8.3f}  {r['loss']:>5.3f}  "
                     f"{r['max_epsilon']:>12}  {r['refused']:>7}  {r['wall_seconds']:>6.1f}")
    delta = f" at δ={summary['delta']:g}" if summary["delta"] else " (no DP)"
    lines.append(f"final accuracy {summary['accuracy']:.3f}; largest client ε "
                 f"{summary['max_client_epsilon']}{delta}; {summary['wall_seconds']} s in all")
    lines.extend(f"warning: {warning}" for warning in summary["warnings"])
    lines.extend(f"wrote {path}" for path in summary["outputs"])
    return "\n".join(lines)


def max_epsilon(entry: dict) -> str:
    """The largest ε any client of this round has spent, as printed ("inf" without DP)."""
    values = [c["epsilon"] for c in entry["clients"] if c["epsilon"] is not None]
    return f"{max(values):.2f}" if values else "inf"


def summarize(settings: RunSettings, wall_seconds: float) -> dict:
    """A readable summary of the run directory, after plotting it."""
    out = Path(settings.out)
    metrics_file = out / METRICS_FILE
    if not (out / MODEL_FILE).exists() or not metrics_file.exists():
        raise RuntimeError(f"the simulation ended without writing {out}/{MODEL_FILE}")
    metrics = json.loads(metrics_file.read_text())
    rounds = metrics["rounds"]
    plots = plot_run(rounds, out)
    last = rounds[-1]
    return {
        "per_round": [{"round": r["round"], "accuracy": r["accuracy"], "loss": r["loss"],
                       "max_epsilon": max_epsilon(r), "wall_seconds": r["wall_seconds"],
                       "refused": sum(bool(c["refused"]) for c in r["clients"])}
                      for r in rounds],
        "initial_accuracy": metrics.get("initial", {}).get("accuracy"),
        "rounds": len(rounds),
        "accuracy": last["accuracy"],
        "loss": last["loss"],
        "max_client_epsilon": max_epsilon(last),
        "delta": settings.delta if settings.dp else None,
        "wall_seconds": round(wall_seconds, 1),
        "warnings": learning_warnings(settings, last["accuracy"]),
        "outputs": [str(out / METRICS_FILE), str(out / MODEL_FILE),
                    str(out / "model_card.json"), *map(str, plots)],
    }
