"""Accuracy against privacy budget: one row per finished federated run.

Usage: python -m emofl.simulations.benchmarks.privacy_table RUN_DIR... [--out PREFIX]
Reads each run's model_card.json and metrics.json; prints a Markdown table and, with --out,
writes PREFIX.csv and PREFIX.png (validation accuracy per round, one line per run).
"""

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ("run", "epsilon", "delta", "accountant", "trainable", "init", "rounds",
           "noise_multiplier", "sample_rate", "steps", "start_accuracy", "val_accuracy")


def row(run_dir: Path) -> dict:
    card = json.loads((run_dir / "model_card.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    privacy, training = card["privacy"], card["training"]
    clients = list(privacy.get("per_client", {}).values())
    return {
        "run": run_dir.name,
        "epsilon": round(privacy["epsilon_max_spent"], 3) if privacy["dp"] else "inf",
        "delta": privacy.get("delta", "-"),
        "accountant": privacy.get("accountant", "-"),
        "trainable": training["trainable"],
        "init": "public pre-trained" if training["init_model"] else "random",
        "rounds": training["rounds_completed"],
        "noise_multiplier": _span(c["noise_multiplier"] for c in clients),
        "sample_rate": _span(c["sample_rate"] for c in clients),
        "steps": _span(c["steps"] for c in clients),
        "start_accuracy": round(metrics.get("initial", {}).get("accuracy", float("nan")), 4),
        "val_accuracy": round(card["validation"]["accuracy"], 4),
    }


def _span(values) -> str:
    values = list(values)
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.3g}" if low == high else f"{low:.3g}–{high:.3g}"


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def plot(run_dirs: list[Path], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for run_dir in run_dirs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rounds = metrics["rounds"]
        xs = [0] + [r["round"] for r in rounds]
        ys = [metrics.get("initial", {}).get("accuracy", float("nan"))]
        ax.plot(xs, ys + [r["accuracy"] for r in rounds], marker=".", label=run_dir.name)
    ax.set(xlabel="round", ylabel="validation accuracy", title="Federated runs on FER2013")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="write PREFIX.csv and PREFIX.png")
    args = parser.parse_args()
    rows = [row(run) for run in args.runs]
    print(markdown(rows))
    if args.out:
        with open(args.out.with_suffix(".csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        plot(args.runs, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
