"""The temporal model's results figure: held-out accuracies, training loss, one example trace."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from emofl.common.data.classes import CLASSES  # noqa: E402

COLORS = ("tab:gray", "tab:orange", "tab:green")  # frame model, EMA, temporal model


def plot_results(
    results: dict, losses: list[float], smoothed: dict[str, np.ndarray], truth: np.ndarray,
    fps: float, out: Path,
) -> None:
    """Write a PNG with accuracy bars, the training loss and the predicted class over time of
    one held-out sequence. `smoothed` maps each method's name to its (S, T, 7) probabilities,
    the raw frame model first; sequence 0 is drawn, `truth` being its labels (T,)."""
    fig = plt.figure(figsize=(12, 7))
    bars_ax, loss_ax = fig.add_subplot(2, 2, 1), fig.add_subplot(2, 2, 2)
    trace_ax = fig.add_subplot(2, 1, 2)

    per_frame = results["val_sequences"]["per_frame"]
    names = ["still images", *per_frame]
    values = [results["frame_model_still_image_val_accuracy"],
              *(m["accuracy"] for m in per_frame.values())]
    colors = ["black", *COLORS][: len(names)]
    bars = bars_ax.bar(range(len(names)), values, color=colors, alpha=0.7)
    bars_ax.bar_label(bars, labels=[f"{v:.1%}" for v in values])
    bars_ax.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    bars_ax.set(ylabel="accuracy per face-frame (val)", ylim=(0, 1),
                title="Held-out accuracy (val faces)")

    loss_ax.plot(np.convolve(losses, np.ones(25) / 25, mode="valid"))
    loss_ax.set(xlabel="step", ylabel="cross-entropy (25-step mean)", title="Training loss")

    time_s = np.arange(len(truth)) / fps
    trace_ax.step(time_s, truth, where="post", color="black", lw=3, alpha=0.3, label="truth")
    (raw_name, raw), *others = smoothed.items()
    trace_ax.plot(time_s, raw[0].argmax(-1), ".", color=COLORS[0], ms=3, label=raw_name)
    # Small vertical offsets keep lines that agree with each other visible.
    for (name, probs), color, offset in zip(others, COLORS[1:], (0.12, -0.12), strict=False):
        trace_ax.step(time_s, probs[0].argmax(-1) + offset, where="post", color=color, lw=1,
                      label=name)
    trace_ax.set_yticks(range(len(CLASSES)), CLASSES)
    trace_ax.set(xlabel="seconds", title="One held-out sequence: predicted expression")
    trace_ax.legend(fontsize="small", loc="upper right", ncol=4)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
