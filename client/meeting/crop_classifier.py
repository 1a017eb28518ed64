"""Face crops of tracked participants to class probabilities, with the CNN re-run only where a
face changed.

Adaptive frame selection: in a meeting most faces barely move from one frame to the next, so
the CNN's answer for a face is reused until its 48x48 crop differs from the crop last
classified by more than `change_threshold` gray levels (mean absolute difference), or until it
is `refresh_steps` calls old (a bound on how stale an answer can get when changes creep in
below the threshold). All faces that need the model in one call go through it as one batch.
"""

import numpy as np

from emofl.client.inference.runtime_models import FrameModel
from emofl.common.data.classes import NUM_CLASSES
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.edge.sessions import softmax


class AdaptiveFaceClassifier:
    """Per-participant cache of the last crop classified and its probabilities.

    `change_threshold` 0 re-runs the model for every face on every call (no reuse).
    """

    def __init__(self, model: FrameModel, change_threshold: float = 4.0,
                 refresh_steps: int = 10) -> None:
        self.model = model
        self.change_threshold = change_threshold
        self.refresh_steps = refresh_steps
        self._crops: dict[int, np.ndarray] = {}
        self._probs: dict[int, np.ndarray] = {}
        self._age: dict[int, int] = {}
        self.classified = 0  # faces that went through the model
        self.reused = 0  # faces answered from the cache

    def classify(self, participants: list[int], crops: np.ndarray) -> np.ndarray:
        """Probabilities (P, 7) for uint8 crops (P, 48, 48), row i of `participants[i]`."""
        stale = [i for i, p in enumerate(participants) if self._needs_model(p, crops[i])]
        if stale:
            fresh = softmax(self.model.logits(preprocess_faces(crops[stale])))
            for row, i in enumerate(stale):
                p = participants[i]
                self._crops[p], self._probs[p], self._age[p] = crops[i].copy(), fresh[row], 0
        self.classified += len(stale)
        self.reused += len(participants) - len(stale)
        return np.array([self._probs[p] for p in participants], dtype=np.float32).reshape(
            len(participants), NUM_CLASSES)

    def _needs_model(self, participant: int, crop: np.ndarray) -> bool:
        last = self._crops.get(participant)
        if last is None or self.change_threshold <= 0:
            return True
        self._age[participant] += 1
        if self._age[participant] >= self.refresh_steps:
            return True
        change = np.abs(crop.astype(np.int16) - last).mean()
        return bool(change > self.change_threshold)

    def forget(self, participant: int) -> None:
        """Drop a participant's cache (its track ended)."""
        self._crops.pop(participant, None)
        self._probs.pop(participant, None)
        self._age.pop(participant, None)
