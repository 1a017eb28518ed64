"""The one path from a federated run's final weights to the files its user gets.

The server takes it in plain mode; in CKKS mode only a key holder can, after decrypting.
"""

from pathlib import Path

from emofl.common.data.federated_data import public_split_of, validation_faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import save_model
from emofl.common.model.model_card import run_card
from emofl.common.model.training import Evaluation, evaluate
from emofl.common.protocol.run_settings import RunSettings

MODEL_FILE = "model.pt"


def release_model(model: EmotionNet, settings: RunSettings, rounds: list[dict],
                  ledgers: dict[int, dict]) -> Evaluation:
    """Evaluate the final model on the run's held-out faces, then write it with its card."""
    validation = validation_faces(settings)
    evaluation = evaluate(model, validation.images, validation.labels)
    split = public_split_of(settings)
    card = run_card(settings, rounds, ledgers, evaluation, split.to_dict() if split else None)
    save_model(model, Path(settings.out) / MODEL_FILE, card)
    return evaluation
