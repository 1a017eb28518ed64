"""How closely the ONNX files follow the torch models they came from: each frame graph's
accuracy on labelled faces and its agreement (share of identical argmax) with the fp32 torch
model, and the temporal graph's largest deviation from the DPLSTM."""

from pathlib import Path

import numpy as np
import torch

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.edge.sessions import OnnxFrameModel, OnnxTemporalStep
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.temporal import TemporalModel

BATCH = 256
TEMPORAL_CHECK_SEED, TEMPORAL_CHECK_SHAPE = 0, (16, 50)  # sequences x frames


def torch_logits(model: EmotionNet, faces: np.ndarray) -> np.ndarray:
    """The fp32 torch model's logits for preprocessed faces (N, 1, 48, 48)."""
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(faces[i:i + BATCH])).numpy()
                               for i in range(0, len(faces), BATCH)])


def frame_fidelity(path: Path, reference: np.ndarray, faces: np.ndarray,
                   labels: np.ndarray) -> dict:
    """The ONNX frame graph at `path` on `faces`: its accuracy against `labels` and its
    agreement with the torch model's `reference` logits."""
    onnx_model = OnnxFrameModel(path)
    predicted = np.concatenate([onnx_model.logits(faces[i:i + BATCH]).argmax(1)
                                for i in range(0, len(faces), BATCH)])
    return {"accuracy": float((predicted == labels).mean()),
            "agreement_with_torch_fp32": float((predicted == reference.argmax(1)).mean()),
            "n": len(labels)}


def temporal_deviation(model: TemporalModel, path: Path) -> dict:
    """The largest |logit difference| between the temporal graph and the DPLSTM over seeded
    random probability sequences."""
    rng = np.random.default_rng(TEMPORAL_CHECK_SEED)
    raw = rng.standard_normal((*TEMPORAL_CHECK_SHAPE, NUM_CLASSES)).astype(np.float32) * 2
    probs = np.exp(raw) / np.exp(raw).sum(-1, keepdims=True)
    state = np.zeros((1, len(probs), model.hidden_size), np.float32)
    logits, _, _ = OnnxTemporalStep(path).run(probs, state, state)
    with torch.inference_mode():
        reference = model(torch.from_numpy(probs)).numpy()
    return {"max_abs_logit_difference_vs_torch": float(np.abs(logits - reference).max()),
            "sequences": TEMPORAL_CHECK_SHAPE[0], "frames": TEMPORAL_CHECK_SHAPE[1]}
