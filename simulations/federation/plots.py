"""PNG plots of a federated run: accuracy and loss per round, ε per client per round."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(rounds: list[dict], out: Path) -> list[Path]:
    """Write accuracy_loss.png and epsilon.png into `out`; returns their paths."""
    numbers = [r["round"] for r in rounds]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    acc_ax.plot(numbers, [r["accuracy"] for r in rounds], marker="o")
    acc_ax.set(xlabel="round", ylabel="accuracy (held-out)", title="Global model accuracy")
    loss_ax.plot(numbers, [r["loss"] for r in rounds], marker="o", color="tab:red")
    loss_ax.set(xlabel="round", ylabel="cross-entropy", title="Global model loss")
    fig.tight_layout()
    accuracy_png = out / "accuracy_loss.png"
    fig.savefig(accuracy_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[int, list[tuple[int, float]]] = {}
    for r in rounds:
        for c in r["clients"]:
            if c["epsilon"] is not None:
                series.setdefault(c["id"], []).append((r["round"], c["epsilon"]))
    for cid, points in sorted(series.items()):
        ax.plot(*zip(*points, strict=True), marker=".", label=f"client {cid}")
    ax.set(xlabel="round", ylabel="cumulative ε", title="Privacy spent per client")
    if series:
        ax.legend(fontsize="small", ncol=2)
    else:
        ax.text(0.5, 0.5, "trained without DP: ε = ∞", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    epsilon_png = out / "epsilon.png"
    fig.savefig(epsilon_png, dpi=100)
    plt.close(fig)
    return [accuracy_png, epsilon_png]
