"""The temporal model: per-frame class probabilities of one face over time -> smoothed logits.

A single frame of a webcam face is a noisy witness of an expression: blur, pose and lighting
flip the frame model's answer from one frame to the next while the expression itself lasts
seconds. `TemporalModel` is a tiny causal LSTM over the frame model's probabilities that
learns how much to trust each new frame against what it has seen so far (and to correct the
frame model's class biases). It uses Opacus' `DPLSTM`, a drop-in `nn.LSTM` whose gradients
Opacus can clip per sample, so the same model can later be trained federated with DP-SGD;
an LSTM is causal by construction, and its state is all a stream has to remember.

`TemporalSmoother` runs the model on a live stream, one frame at a time, for every
participant of a meeting (`edge.temporal_smoother` is the same on ONNX Runtime, and
`smoothers.EmaSmoother` the exponential-moving-average baseline with the same interface).
"""

import numpy as np
import torch
from opacus.layers import DPLSTM
from torch import nn

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.model.smoothers import LstmStreams

HIDDEN_SIZE = 32
# Probabilities are floored before the log so that a frame model's hard 0 is a finite input.
MIN_PROB = 1e-4

LstmState = tuple[torch.Tensor, torch.Tensor]


class TemporalModel(nn.Module):
    """Causal LSTM over per-frame probabilities (batch, time, 7) -> logits (batch, time, 7).

    The input is log-probabilities; the output is a linear read-out of the LSTM state plus a
    linear map of the current frame's log-probabilities (a learnt per-frame recalibration
    that the recurrent part only has to correct). The output at t depends only on frames <= t.
    """

    def __init__(self, hidden_size: int = HIDDEN_SIZE) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = DPLSTM(NUM_CLASSES, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, NUM_CLASSES)
        self.skip = nn.Linear(NUM_CLASSES, NUM_CLASSES)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of whole sequences, each started from a zero state."""
        return self.forward_with_state(probs)[0]

    def forward_with_state(
        self, probs: torch.Tensor, state: LstmState | None = None
    ) -> tuple[torch.Tensor, LstmState]:
        """Logits (batch, time, 7) for `probs` continued from `state` (None: a fresh stream),
        and the LSTM state (h, c), each (1, batch, hidden), after the last frame."""
        if probs.ndim != 3 or probs.shape[-1] != NUM_CLASSES:
            raise ValueError(f"expected probabilities (batch, time, 7), got {tuple(probs.shape)}")
        log_probs = probs.clamp_min(MIN_PROB).log()
        hidden, state = self.lstm(log_probs, state)
        return self.head(hidden) + self.skip(log_probs), state


class TemporalSmoother(LstmStreams):
    """Streams a `TemporalModel` over a meeting, one LSTM state per participant
    (`LstmStreams`), each frame's participants in one batched LSTM step."""

    def __init__(self, model: TemporalModel) -> None:
        super().__init__(model.hidden_size)
        self.model = model.eval()

    def _step(self, rows: np.ndarray, h: np.ndarray, c: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, (h, c) = self.model.forward_with_state(
                torch.from_numpy(rows)[:, None], (torch.from_numpy(h), torch.from_numpy(c)))
            return torch.softmax(logits[:, 0], dim=1).numpy(), h.numpy(), c.numpy()
