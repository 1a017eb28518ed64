"""The frame and temporal models as fp32 ONNX graphs, written with torch.onnx.export.

The frame graph maps faces (N, 1, 48, 48) to both the backbone's features (N, d) and the head's
logits (N, 7): the device runs one graph, and the encrypted head's client takes `features`
while local classification takes `logits`. Dropout and every other train-only layer is off
(the model is exported in eval mode), whatever the backbone kind.

The temporal graph is one streaming step of any length: log-probabilities through an ONNX LSTM
whose weights are copied from the Opacus DPLSTM (the same gate order, i, f, g, o, and the same
two biases), with the LSTM state as explicit inputs and outputs so a stream keeps it between
calls.
"""

import warnings
from pathlib import Path

import torch
from torch import nn

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.data.face_dataset import IMAGE_SIZE
from emofl.common.edge.files import (
    FRAME_INPUTS,
    FRAME_OUTPUTS,
    OPSET,
    TEMPORAL_INPUTS,
    TEMPORAL_OUTPUTS,
)
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.temporal import MIN_PROB, TemporalModel


class _FeaturesAndLogits(nn.Module):
    def __init__(self, model: EmotionNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.backbone(faces)
        return features, self.model.head(features)


class _TemporalStep(nn.Module):
    """`TemporalModel.forward_with_state` with a plain nn.LSTM holding the DPLSTM's weights."""

    def __init__(self, model: TemporalModel) -> None:
        super().__init__()
        self.lstm = nn.LSTM(NUM_CLASSES, model.hidden_size, batch_first=True)
        self.lstm.load_state_dict(model.lstm.state_dict())  # DPLSTM keeps nn.LSTM's names
        self.head, self.skip = model.head, model.skip

    def forward(self, probs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
        log_probs = probs.clamp_min(MIN_PROB).log()
        hidden, (h, c) = self.lstm(log_probs, (h0, c0))
        return self.head(hidden) + self.skip(log_probs), h, c


def _export(module: nn.Module, example: tuple, path: Path, inputs: tuple[str, ...],
            outputs: tuple[str, ...], dynamic_axes: dict) -> None:
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; these graphs are static, and the TorchScript one exports them exactly.
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic_axes)


def export_frame_model(model: EmotionNet, path: str | Path) -> None:
    """Write the frame model (eval mode) as an fp32 ONNX graph faces -> (features, logits)."""
    model.eval()
    faces = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    batch = {0: "faces"}
    _export(_FeaturesAndLogits(model), (faces,), Path(path), FRAME_INPUTS, FRAME_OUTPUTS,
            {"faces": batch, "features": batch, "logits": batch})


def export_temporal_model(model: TemporalModel, path: str | Path) -> None:
    """Write the temporal model as an fp32 ONNX graph (probs, h0, c0) -> (logits, h, c)."""
    step = _TemporalStep(model.eval())
    probs = torch.full((1, 2, NUM_CLASSES), 1.0 / NUM_CLASSES)
    state = torch.zeros(1, 1, model.hidden_size)
    sequence, streams = {0: "streams", 1: "time"}, {1: "streams"}
    _export(step, (probs, state, state), Path(path), TEMPORAL_INPUTS, TEMPORAL_OUTPUTS,
            {"probs": sequence, "logits": sequence, "h0": streams, "c0": streams,
             "h": streams, "c": streams})
