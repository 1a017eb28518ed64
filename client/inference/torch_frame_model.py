"""The torch frame model behind the same numpy interface as `OnnxFrameModel`: today's path,
kept for `--runtime torch` and as the reference the ONNX graphs are checked against."""

import numpy as np
import torch

from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import backbone_sha256


class TorchFrameModel:
    """Preprocessed faces (N, 1, 48, 48) float32 to features (N, d) or logits (N, 7)."""

    def __init__(self, model: EmotionNet) -> None:
        self.model = model.eval()
        self.backbone_sha256 = backbone_sha256(model)

    def features(self, faces: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.features(torch.from_numpy(faces)).numpy()

    def logits(self, faces: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(faces)).numpy()
