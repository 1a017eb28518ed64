"""The temporal model streamed over a meeting on ONNX Runtime: what `temporal.TemporalSmoother`
does with the DPLSTM, one LSTM state per participant and one batched step per frame, in numpy."""

import numpy as np

from emofl.common.edge.sessions import OnnxTemporalStep, softmax
from emofl.common.model.smoothers import as_prob_rows


class OnnxTemporalSmoother:
    """Per-participant LSTM states and the exported temporal graph; a participant met for the
    first time (or after `forget`) starts from a zero state."""

    def __init__(self, step: OnnxTemporalStep) -> None:
        self._step = step
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._zero = np.zeros((1, 1, step.hidden_size), np.float32)

    def update_many(self, participants: list[int], probs: np.ndarray) -> np.ndarray:
        """Smoothed probabilities (P, 7) after one frame of `probs` (P, 7), row i belonging to
        `participants[i]` (distinct ids); one graph run for all of them."""
        rows = as_prob_rows(probs, len(participants))
        if len(set(participants)) != len(participants):
            raise ValueError("participants of one frame must be distinct")
        if not participants:
            return rows
        fresh = (self._zero, self._zero)
        h = np.concatenate([self._states.get(p, fresh)[0] for p in participants], axis=1)
        c = np.concatenate([self._states.get(p, fresh)[1] for p in participants], axis=1)
        logits, h, c = self._step.run(rows[:, None], h, c)
        for i, participant in enumerate(participants):
            self._states[participant] = (h[:, i:i + 1], c[:, i:i + 1])
        return softmax(logits[:, 0]).astype(np.float32)

    def forget(self, participant: int) -> None:
        """Drop the participant's state: its next frame starts a fresh stream."""
        self._states.pop(participant, None)
