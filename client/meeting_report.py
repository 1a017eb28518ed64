"""The files `emofl analyze` writes: timeline.csv as frames are processed, then summary.json and
plots/*.png. None of them holds a pixel of anyone's face.

timeline.csv grows row by row (flushed as it goes), so when a stream ends early or the run is
interrupted, everything analysed up to then is on disk.
"""

import csv
from pathlib import Path

import matplotlib
import numpy as np

from emofl.common import atomic_io
from emofl.common.classes import CLASSES
from emofl.common.meeting_analytics import MeetingAnalytics, windowed_stability

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TIMELINE_COLUMNS: tuple[str, ...] = (
    "frame", "time_s", "participant", "x", "y", "w", "h", *CLASSES, "label", "engagement")
HEATMAP_COLUMNS = 600  # time bins of a heat map; longer meetings are averaged into them


class TimelineWriter:
    """timeline.csv: one row per participant per processed frame; probabilities after the
    temporal model, label the most probable class, box in original-frame pixels."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("w", newline="")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(TIMELINE_COLUMNS)

    def write(self, frame: int, time_s: float, participants: list[int], boxes: np.ndarray,
              probs: np.ndarray, engagement: np.ndarray) -> None:
        time_text = f"{time_s:.3f}"
        self._csv.writerows(
            (frame, time_text, p, *(round(float(v)) for v in box), *(f"{q:.4f}" for q in row),
             CLASSES[int(row.argmax())], f"{e:.4f}")
            for p, box, row, e in zip(participants, boxes, probs, engagement, strict=True))

    def close(self) -> None:
        self._handle.close()


def write_summary(path: Path, analytics: MeetingAnalytics, run: dict) -> dict:
    """summary.json: `run` (what was analysed, how, how fast) and the analytics summary."""
    summary = {"run": run, **analytics.summary()}
    atomic_io.write_json(path, summary)
    return summary


def write_plots(folder: Path, analytics: MeetingAnalytics) -> list[Path]:
    """engagement.png, stability.png, room_distribution.png and emotion_heatmap.png."""
    folder.mkdir(parents=True, exist_ok=True)
    people = analytics.participants
    paths = [folder / name for name in ("engagement.png", "stability.png",
                                        "room_distribution.png", "emotion_heatmap.png")]
    _line_plot(paths[0], analytics, people, "engagement E_i(t)",
               lambda times, probs, engaged: engaged)
    _line_plot(paths[1], analytics, people,
               f"stability S_i over the last {analytics.window_s:g} s (0 = steady)",
               lambda times, probs, engaged: windowed_stability(times, probs,
                                                                analytics.window_s))
    _room_plot(paths[2], analytics)
    _heatmap(paths[3], analytics, people)
    return paths


def _line_plot(path: Path, analytics: MeetingAnalytics, people: list[int], ylabel: str,
               values) -> None:
    fig, ax = plt.subplots(figsize=(10, 4))
    for participant in people:
        times, probs, engaged = analytics.series(participant)
        ax.plot(times, values(times, probs, engaged), lw=1, label=f"participant {participant}")
    ax.set(xlabel="time (s)", ylabel=ylabel)
    if people:
        ax.legend(fontsize="small", ncol=min(len(people), 5), loc="upper right")
    else:
        ax.text(0.5, 0.5, "no participant seen", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _room_plot(path: Path, analytics: MeetingAnalytics) -> None:
    times, room, _ = analytics.room()
    fig, ax = plt.subplots(figsize=(10, 4))
    if len(times):
        ax.stackplot(times, room.T, labels=CLASSES)
        ax.legend(fontsize="small", ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set(xlabel="time (s)", ylabel="room distribution P_t", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _heatmap(path: Path, analytics: MeetingAnalytics, people: list[int]) -> None:
    rows = max(len(people), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 0.4 + 1.3 * rows), squeeze=False)
    for ax, participant in zip(axes[:, 0], people, strict=False):
        times, probs, _ = analytics.series(participant)
        bins = min(HEATMAP_COLUMNS, len(times))
        edges = np.linspace(0, len(times), bins + 1).astype(int)
        binned = np.array([probs[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:],
                                                                     strict=True)])
        ax.imshow(binned.T, aspect="auto", vmin=0, vmax=1, cmap="magma", interpolation="nearest",
                  extent=(float(times[0]), float(times[-1]) + 1e-3, len(CLASSES) - 0.5, -0.5))
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=6)
        ax.set_ylabel(f"#{participant}", rotation=0, labelpad=14)
    axes[-1, 0].set_xlabel("time (s)")
    if not people:
        axes[0, 0].text(0.5, 0.5, "no participant seen", ha="center",
                        transform=axes[0, 0].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
