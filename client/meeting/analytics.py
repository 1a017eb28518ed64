"""Meeting analytics over per-participant emotion probabilities (docs/architecture.md, "Formulas").

- Room distribution: `P_t = (1/n) Σ_i P(y_t^(i) | I_t^(i))` over the n participants seen at t.
- Engagement: `E_i(t) = Σ_j P(y_t^(i)=y_j | I_t^(i)) · w(y_j)` with configurable class weights.
- Stability: `S_i = (1/T) Σ_{t=1}^{T-1} |P_{t+1}^(i) − P_t^(i)|` (L1 over classes): the mean
  change of a participant's distribution per frame, so 0 is perfectly steady and larger values
  mean a more volatile expression. Computed over the whole meeting and over a sliding window.
- Alerts: a negative state (angry, fear or sad dominant) that lasts longer than T seconds is
  reported as one event with its start, end and the negative emotion seen most.

Everything here is pure (numpy in, numbers out), so the same code serves recorded video, a live
camera and tests with hand-computed cases.
"""

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emofl.common.data.classes import CLASS_SYNONYMS, CLASSES, NUM_CLASSES
from emofl.common.errors import SettingsError

# Default engagement weight per class: how much an expression signals active participation.
# Our own choice (the source paper leaves w configurable): open positive or reactive expressions
# count most, a calm neutral face half, withdrawn or hostile ones least.
DEFAULT_WEIGHTS: dict[str, float] = {
    "angry": 0.3, "disgust": 0.2, "fear": 0.3, "happy": 1.0, "sad": 0.2, "surprise": 0.9,
    "neutral": 0.5,
}
NEGATIVE_CLASSES: tuple[str, ...] = ("angry", "fear", "sad")
_NEGATIVE_INDICES = frozenset(CLASSES.index(name) for name in NEGATIVE_CLASSES)


def parse_weights(text: str) -> np.ndarray:
    """Engagement weights from "happy=1.0,sad=0.1,...": named classes override DEFAULT_WEIGHTS,
    the others keep their defaults; a class named twice (also through a synonym) is refused,
    since which of its weights was meant cannot be known. Returns float64 (7,) in FER2013
    class order."""
    weights = dict(DEFAULT_WEIGHTS)
    named: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = CLASS_SYNONYMS.get(name.strip().lower(), name.strip().lower())
        if not sep or name not in weights:
            raise SettingsError(f"--weights: expected CLASS=NUMBER with CLASS one of "
                                f"{', '.join(CLASSES)}; got {item!r}")
        if name in named:
            raise SettingsError(f"--weights: {name} is given twice ({named[name]!r} and "
                                f"{item!r}); give each class once")
        named[name] = item
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"--weights: not a number in {item!r}") from None
        if not math.isfinite(number) or number < 0:
            raise SettingsError(f"--weights: weights must be finite and non-negative, got {item!r}")
        weights[name] = number
    return np.array([weights[name] for name in CLASSES], dtype=np.float64)


def room_distribution(probs: np.ndarray) -> np.ndarray:
    """P_t: the mean of the participants' distributions (n, 7) at one time step; zeros when
    nobody is seen."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, NUM_CLASSES)
    return probs.mean(axis=0) if len(probs) else np.zeros(NUM_CLASSES)


def engagement(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """E_i(t) for distributions of shape (..., 7): the expected class weight."""
    return np.asarray(probs, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)


def stability(series: np.ndarray) -> float:
    """S_i over a whole series (T, 7): the L1 changes between consecutive steps summed, over T.
    A series of fewer than two steps has not changed: 0."""
    series = np.asarray(series, dtype=np.float64)
    if len(series) < 2:
        return 0.0
    return float(np.abs(np.diff(series, axis=0)).sum() / len(series))


def windowed_stability(times: np.ndarray, series: np.ndarray, window_s: float) -> np.ndarray:
    """S_i over a sliding window: element t is `stability` of the steps whose times lie in
    (times[t] - window_s, times[t]], i.e. the same formula over the last `window_s` seconds."""
    if window_s <= 0:
        raise ValueError(f"stability window must be positive, got {window_s}")
    times = np.asarray(times, dtype=np.float64)
    series = np.asarray(series, dtype=np.float64)
    if len(series) == 0:
        return np.zeros(0)
    change = np.concatenate([[0.0], np.abs(np.diff(series, axis=0)).sum(axis=1)])
    cumulative = np.cumsum(change)
    ends = np.arange(len(series))
    starts = np.searchsorted(times, times - window_s, side="right")
    # the changes inside a window are those into its steps after the first: starts+1 .. ends
    inside = cumulative[ends] - cumulative[starts]
    return inside / (ends - starts + 1)


@dataclass(frozen=True)
class Alert:
    """A sustained negative state of one participant, in seconds of meeting time."""

    participant: int
    emotion: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {"participant": self.participant, "emotion": self.emotion,
                "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "duration_s": round(self.duration_s, 3)}


@dataclass
class _NegativeRun:
    start_s: float
    last_s: float
    emotions: Counter = field(default_factory=Counter)
    reported: bool = False


class NegativeStateAlerts:
    """Streaming detector of sustained negative states, one run per participant.

    Feed it each participant's dominant class at each processed frame. A run is a stretch of
    observations whose dominant class is angry, fear or sad, with no gap between observations
    longer than `max_gap_s`; it becomes an alert once it has lasted more than `min_seconds`.
    `update` returns the alerts that just crossed the threshold (for live notification);
    `finish` closes every open run and returns all alerts in start order.
    """

    def __init__(self, min_seconds: float, max_gap_s: float = 1.0) -> None:
        if min_seconds < 0:
            raise ValueError(f"alert threshold must be non-negative, got {min_seconds}")
        self.min_seconds = min_seconds
        self.max_gap_s = max_gap_s
        self._runs: dict[int, _NegativeRun] = {}
        self._closed: list[Alert] = []

    def update(self, participant: int, time_s: float, label: int) -> Alert | None:
        run = self._runs.get(participant)
        if run is not None and time_s - run.last_s > self.max_gap_s:
            self._close(participant)
            run = None
        if label not in _NEGATIVE_INDICES:
            if run is not None:
                self._close(participant)
            return None
        if run is None:
            run = self._runs[participant] = _NegativeRun(start_s=time_s, last_s=time_s)
        run.last_s = time_s
        run.emotions[CLASSES[label]] += 1
        if not run.reported and run.last_s - run.start_s > self.min_seconds:
            run.reported = True
            return self._alert(participant, run)
        return None

    def finish(self) -> list[Alert]:
        for participant in list(self._runs):
            self._close(participant)
        return sorted(self._closed, key=lambda a: (a.start_s, a.participant))

    def _close(self, participant: int) -> None:
        run = self._runs.pop(participant)
        if run.reported:
            self._closed.append(self._alert(participant, run))

    @staticmethod
    def _alert(participant: int, run: _NegativeRun) -> Alert:
        emotion = max(run.emotions.items(), key=lambda kv: (kv[1], -CLASSES.index(kv[0])))[0]
        return Alert(participant, emotion, run.start_s, run.last_s)


class MeetingAnalytics:
    """Collects every participant's (smoothed) distributions over a meeting and derives
    E_i(t), P_t, S_i (whole and windowed) and alerts from them.

    `add` takes one processed frame and returns its engagements and any alert that just
    fired, so a live caller can show them at once; `summary` describes the meeting so far.
    """

    def __init__(self, weights: np.ndarray, window_s: float = 10.0,
                 alert_seconds: float = 10.0, room_bin_s: float = 1.0) -> None:
        if window_s <= 0:
            raise ValueError(f"stability window must be positive, got {window_s}")
        self.weights = np.asarray(weights, dtype=np.float64)
        self.window_s = window_s
        self.room_bin_s = room_bin_s
        self.alerts = NegativeStateAlerts(alert_seconds)
        self._times: dict[int, list[float]] = {}
        self._probs: dict[int, list[np.ndarray]] = {}
        self._room_times: list[float] = []
        self._room: list[np.ndarray] = []
        self._room_sizes: list[int] = []

    def add(self, time_s: float, participants: list[int],
            probs: np.ndarray) -> tuple[np.ndarray, list[Alert]]:
        """Record one frame: `probs` (P, 7), row i of `participants[i]`. Returns E_i(t) (P,)
        and the alerts that crossed their threshold at this frame."""
        probs = np.asarray(probs, dtype=np.float64).reshape(len(participants), NUM_CLASSES)
        fired = []
        for participant, row in zip(participants, probs, strict=True):
            self._times.setdefault(participant, []).append(time_s)
            self._probs.setdefault(participant, []).append(row)
            alert = self.alerts.update(participant, time_s, int(row.argmax()))
            if alert is not None:
                fired.append(alert)
        if participants:
            self._room_times.append(time_s)
            self._room.append(room_distribution(probs))
            self._room_sizes.append(len(participants))
        return engagement(probs, self.weights), fired

    @property
    def participants(self) -> list[int]:
        return sorted(self._times)

    def series(self, participant: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A participant's times (T,), distributions (T, 7) and engagement E_i(t) (T,)."""
        probs = np.array(self._probs[participant]).reshape(-1, NUM_CLASSES)
        return np.array(self._times[participant]), probs, engagement(probs, self.weights)

    def room(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P_t at every frame with someone in it: times (T,), P_t (T, 7), participants n (T,)."""
        return (np.array(self._room_times), np.array(self._room).reshape(-1, NUM_CLASSES),
                np.array(self._room_sizes, dtype=int))

    def summary(self) -> dict:
        """Per participant: frames seen, dominant emotion, mean engagement, S_i, windowed S_i,
        alerts; the room's distribution per `room_bin_s` seconds; all alerts in time order."""
        alerts = self.alerts.finish()
        people = {}
        for participant in self.participants:
            times, probs, engaged = self.series(participant)
            labels = np.bincount(probs.argmax(axis=1), minlength=NUM_CLASSES)
            windowed = windowed_stability(times, probs, self.window_s)
            peak = int(windowed.argmax())
            people[str(participant)] = {
                "frames_seen": len(times),
                "first_s": round(float(times[0]), 3),
                "last_s": round(float(times[-1]), 3),
                "dominant_emotion": CLASSES[int(labels.argmax())],
                "label_share": _by_class(labels / len(times)),
                "mean_distribution": _by_class(probs.mean(axis=0)),
                "mean_engagement": round(float(engaged.mean()), 4),
                "stability": round(stability(probs), 5),
                "stability_windowed": {
                    "window_s": self.window_s,
                    "mean": round(float(windowed.mean()), 5),
                    "max": round(float(windowed[peak]), 5),
                    "max_at_s": round(float(times[peak]), 3),
                },
                "alerts": [a.to_dict() for a in alerts if a.participant == participant],
            }
        return {"participants": people, "room": self._room_summary(),
                "alerts": [a.to_dict() for a in alerts]}

    def _room_summary(self) -> dict:
        times, room, sizes = self.room()
        bins = []
        if len(times):
            index = np.floor(times / self.room_bin_s).astype(int)
            for b in np.unique(index):
                inside = index == b
                bins.append({"time_s": round(float(b * self.room_bin_s), 3),
                             "participants": round(float(sizes[inside].mean()), 2),
                             "distribution": _by_class(room[inside].mean(axis=0))})
        mean = room.mean(axis=0) if len(room) else np.zeros(NUM_CLASSES)
        return {"bin_s": self.room_bin_s, "mean_distribution": _by_class(mean),
                "over_time": bins}


def _by_class(values: np.ndarray) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(CLASSES, values, strict=True)}
