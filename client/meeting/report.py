"""The files `emofl analyze` writes: timeline.csv as frames are processed, then summary.json and
plots/*.png. None of them holds a pixel of anyone's face.

timeline.csv grows row by row (flushed as it goes), so when a stream ends early or the run is
interrupted, everything analysed up to then is on disk.
"""

import csv
from pathlib import Path

import matplotlib
import numpy as np

from emofl.client.meeting.analytics import MeetingAnalytics, windowed_stability
from emofl.common.data.classes import CLASSES
from emofl.common.storage import atomic_io

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TIMELINE_COLUMNS: tuple[str, ...] = (
    "frame", "time_s", "participant", "x", "y", "w", "h", *CLASSES, "label", "engagement")
HEATMAP_COLUMNS = 600  # time bins of a heat map; longer meetings are averaged into them
GAP_S = 1.0  # plotted lines break where a participant went unseen longer than this
MARGIN_IN = {"left": 0.9, "right": 0.2, "top": 0.35}  # room for labels, in inches


class TimelineWriter:
    """timeline.csv: one row per participant per processed frame; probabilities after the
    temporal model, label the most probable class, box in original-frame pixels."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("w", newline="", buffering=1)  # line-buffered: on disk as written
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
    """engagement.png and stability.png (one panel per participant), room_distribution.png
    (stacked area) and emotion_heatmap.png (one heat map per participant), all on the
    meeting's time axis; a participant's lines break where they were not seen."""
    folder.mkdir(parents=True, exist_ok=True)
    people = analytics.participants
    times = [analytics.series(p)[0] for p in people]
    end = max((float(t[-1]) for t in times), default=0.0) + 1e-3
    paths = [folder / name for name in ("engagement.png", "stability.png",
                                        "room_distribution.png", "emotion_heatmap.png")]
    _panels(paths[0], analytics, end, "engagement E_i(t)", (0, 1.05),
            lambda times, probs, engaged: engaged)
    _panels(paths[1], analytics, end,
            f"stability S_i, last {analytics.window_s:g} s (0 = steady)", None,
            lambda times, probs, engaged: windowed_stability(times, probs, analytics.window_s))
    _room_plot(paths[2], analytics, end)
    _heatmap(paths[3], analytics, end)
    return paths


def _with_gaps(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The series with a NaN inserted wherever consecutive observations are more than
    GAP_S apart, so that a plotted line breaks there instead of bridging the absence."""
    breaks = np.flatnonzero(np.diff(times) > GAP_S) + 1
    return (np.insert(times.astype(float), breaks, np.nan),
            np.insert(values.astype(float), breaks, np.nan, axis=0))


def _figure(rows: int, height: float, end: float):
    fig, axes = plt.subplots(max(rows, 1), 1, figsize=(10, 0.5 + height * max(rows, 1)),
                             sharex=True, squeeze=False)
    axes[-1, 0].set(xlabel="time (s)", xlim=(0, end))
    if rows == 0:
        axes[0, 0].text(0.5, 0.5, "no participant seen", ha="center",
                        transform=axes[0, 0].transAxes)
    return fig, axes[:, 0]


def _save(fig, path: Path, bottom_in: float = 0.5) -> None:
    """Write the figure with margins fixed in inches (room for the title, the time axis and
    the participant labels): `tight_layout` would draw every figure twice to find them."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=MARGIN_IN["left"] / width, right=1 - MARGIN_IN["right"] / width,
                        top=1 - MARGIN_IN["top"] / height, bottom=bottom_in / height)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _panels(path: Path, analytics: MeetingAnalytics, end: float, title: str,
            ylim: tuple[float, float] | None, values) -> None:
    people = analytics.participants
    fig, axes = _figure(len(people), 0.9, end)
    for ax, participant in zip(axes, people, strict=False):
        times, probs, engaged = analytics.series(participant)
        ax.plot(*_with_gaps(times, values(times, probs, engaged)), lw=1)
        ax.set_ylabel(f"#{participant}", rotation=0, labelpad=14)
        if ylim:
            ax.set_ylim(*ylim)
    axes[0].set_title(title)
    _save(fig, path)


def _room_plot(path: Path, analytics: MeetingAnalytics, end: float) -> None:
    times, room, _ = analytics.room()
    fig, ax = plt.subplots(figsize=(10, 4))
    if len(times):
        gapped_times, gapped_room = _with_gaps(times, room)
        ax.stackplot(gapped_times, gapped_room.T, labels=CLASSES)
        ax.legend(fontsize="small", ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set(xlabel="time (s)", ylabel="room distribution P_t", ylim=(0, 1), xlim=(0, end))
    _save(fig, path, bottom_in=1.1)  # the legend sits below the time axis


def _heatmap(path: Path, analytics: MeetingAnalytics, end: float) -> None:
    people = analytics.participants
    fig, axes = _figure(len(people), 1.2, end)
    edges = np.linspace(0, end, HEATMAP_COLUMNS + 1)
    cmap = plt.get_cmap("magma").with_extremes(bad="white")
    for ax, participant in zip(axes, people, strict=False):
        times, probs, _ = analytics.series(participant)
        column = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, HEATMAP_COLUMNS - 1)
        sums = np.zeros((HEATMAP_COLUMNS, len(CLASSES)))
        np.add.at(sums, column, probs)
        counts = np.bincount(column, minlength=HEATMAP_COLUMNS)[:, None]
        binned = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        ax.imshow(binned.T, aspect="auto", vmin=0, vmax=1, cmap=cmap, interpolation="nearest",
                  extent=(0, end, len(CLASSES) - 0.5, -0.5))
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=6)
        ax.set_ylabel(f"#{participant}", rotation=0, labelpad=14)
    axes[0].set_title("emotion probabilities over time (white: not seen)")
    _save(fig, path)
