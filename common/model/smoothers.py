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
