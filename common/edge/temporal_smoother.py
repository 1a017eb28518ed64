"""The temporal model streamed over a meeting on ONNX Runtime: what `temporal.TemporalSmoother`
does with the DPLSTM, one LSTM state per participant and one batched step per frame, in numpy."""

import numpy as np

from emofl.common.edge.sessions import OnnxTemporalStep, softmax
from emofl.common.model.smoothers import LstmStreams


class OnnxTemporalSmoother(LstmStreams):
    """The exported temporal graph behind the per-participant states of `LstmStreams`."""

    def __init__(self, step: OnnxTemporalStep) -> None:
        super().__init__(step.hidden_size)
        self._graph = step

    def _step(self, rows: np.ndarray, h: np.ndarray, c: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, h, c = self._graph.run(rows[:, None], h, c)
        return softmax(logits[:, 0]).astype(np.float32), h, c
