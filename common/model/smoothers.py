"""Per-participant smoothing of frame probabilities, the part that needs neither torch nor a
model: the interface every smoother offers, no smoothing, and the exponential moving average
(the temporal model's baseline)."""

from typing import Protocol

import numpy as np

from emofl.common.data.classes import NUM_CLASSES


class Smoother(Protocol):
    """What the meeting pipeline needs of a per-participant smoother (`PassThrough`,
    `EmaSmoother`, `temporal.TemporalSmoother`, `temporal_smoother.OnnxTemporalSmoother`)."""

    def update_many(self, participants: list[int], probs: np.ndarray) -> np.ndarray: ...

    def forget(self, participant: int) -> None: ...


class PassThrough:
    """No smoothing: the frame model's probabilities as they are."""

    def update_many(self, participants: list[int], probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs, dtype=np.float32).reshape(len(participants), NUM_CLASSES)

    def forget(self, participant: int) -> None:
        """Nothing is kept per participant."""


def as_prob_rows(probs: np.ndarray, rows: int) -> np.ndarray:
    """`probs` as float32 (rows, 7), or ValueError naming the shape it has."""
    array = np.asarray(probs, dtype=np.float32)
    if array.shape != (rows, NUM_CLASSES):
        raise ValueError(f"expected probabilities of shape ({rows}, 7), got {array.shape}")
    return array


class EmaSmoother:
    """Exponential moving average per participant: s_t = alpha * p_t + (1 - alpha) * s_(t-1),
    starting from s_1 = p_1. `alpha` = 1 passes frames through unchanged."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._states: dict[int, np.ndarray] = {}

    def update_many(self, participants: list[int], probs: np.ndarray) -> np.ndarray:
        """Averages (P, 7) after one frame of `probs` (P, 7), row i of `participants[i]`."""
        rows = as_prob_rows(probs, len(participants))
        out = rows.copy()  # a fresh array: the states below must not alias the caller's
        for i, participant in enumerate(participants):
            previous = self._states.get(participant)
            if previous is not None:
                out[i] = self.alpha * out[i] + (1 - self.alpha) * previous
            self._states[participant] = out[i].copy()
        return out

    def forget(self, participant: int) -> None:
        """Drop the participant's average: its next frame starts a fresh one."""
        self._states.pop(participant, None)


def ema_sequences(probs: np.ndarray, alpha: float) -> np.ndarray:
    """The EMA of whole sequences `probs` (S, T, 7) along time, as `EmaSmoother` computes it."""
    out = np.empty_like(probs)
    out[:, 0] = probs[:, 0]
    for t in range(1, probs.shape[1]):
        out[:, t] = alpha * probs[:, t] + (1 - alpha) * out[:, t - 1]
    return out


class LstmStreams:
    """One LSTM state (h, c), each float32 (1, 1, hidden), per participant, and the batching
    both temporal smoothers share: a frame's participants advance with one `_step` of the
    model, a participant met for the first time (or after `forget`) from a zero state. The
    step itself (torch or ONNX Runtime) is the subclass's."""

    def __init__(self, hidden_size: int) -> None:
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._zero = np.zeros((1, 1, hidden_size), np.float32)

    def _step(self, rows: np.ndarray, h: np.ndarray, c: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Smoothed probabilities (P, 7) for one frame `rows` (P, 7) from states h, c
        (1, P, hidden), and the states after it."""
        raise NotImplementedError

    def update_many(self, participants: list[int], probs: np.ndarray) -> np.ndarray:
        """Smoothed probabilities (P, 7) after one frame of `probs` (P, 7), row i belonging to
        `participants[i]` (distinct ids); one model step for all of them."""
        rows = as_prob_rows(probs, len(participants))
        if len(set(participants)) != len(participants):
            raise ValueError("participants of one frame must be distinct")
        if not participants:
            return rows
        fresh = (self._zero, self._zero)
        h = np.concatenate([self._states.get(p, fresh)[0] for p in participants], axis=1)
        c = np.concatenate([self._states.get(p, fresh)[1] for p in participants], axis=1)
        smoothed, h, c = self._step(rows, h, c)
        for i, participant in enumerate(participants):
            self._states[participant] = (h[:, i:i + 1], c[:, i:i + 1])
        return smoothed

    def forget(self, participant: int) -> None:
        """Drop the participant's state: its next frame starts a fresh stream."""
        self._states.pop(participant, None)
