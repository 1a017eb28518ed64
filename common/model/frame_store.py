"""Saving and loading frame models with their model cards, and the model shipped in the package.

A model file is a plain `torch.save`d state_dict (loadable with `torch.load`); its card is the
JSON file beside it, `<stem>_card.json`, recording how it was trained and how to rebuild it.
"""

import hashlib
import json
from pathlib import Path

import torch

from emofl.common.model.emotion_net import FEATURE_DIM, EmotionNet
from emofl.common.storage import atomic_io

SHIPPED_MODEL = Path(__file__).parents[1] / "weights" / "frame_model.pt"


class ModelError(ValueError):
    """A model file is missing or does not hold an emofl frame model."""


def card_path(model_path: str | Path) -> Path:
    path = Path(model_path)
    return path.with_name(f"{path.stem}_card.json")


def architecture_of(model: EmotionNet) -> dict:
    """What `build_model` needs to rebuild this model's shape."""
    return {"kind": model.kind, "width": model.width, "feature_dim": model.backbone.feature_dim}


def build_model(architecture: dict | None = None) -> EmotionNet:
    arch = architecture or {}
    return EmotionNet(width=arch.get("width", 16), feature_dim=arch.get("feature_dim", FEATURE_DIM),
                      kind=arch.get("kind", "separable"))


def save_model(model: EmotionNet, path: str | Path, card: dict) -> None:
    """Write the state_dict and its card (with the architecture added) atomically."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_io.torch_save(path, state)
    atomic_io.write_json(card_path(path), {"architecture": architecture_of(model), **card})


def read_card(path: str | Path | None = None) -> dict:
    """The card of the model at `path` (the shipped model when None)."""
    model_path = Path(path) if path else SHIPPED_MODEL
    card = card_path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if not card.is_file():
        raise ModelError(f"model card not found: {card}")
    try:
        return json.loads(card.read_text())
    except json.JSONDecodeError as err:
        raise ModelError(f"model card is not valid JSON: {card} ({err.msg})") from None


def load_model(path: str | Path | None = None) -> tuple[EmotionNet, dict]:
    """The model at `path` (the shipped model when None) in eval mode, and its card."""
    model_path = Path(path) if path else SHIPPED_MODEL
    card = read_card(model_path)
    model = build_model(card.get("architecture"))
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not its own
        reason = str(err).splitlines()[0][:80]
        raise ModelError(f"cannot load model weights from {model_path}: {reason}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise ModelError(f"cannot load model weights from {model_path}: they do not fit the "
                         f"architecture in {card_path(model_path).name}") from None
    model.eval()
    return model, card


def backbone_sha256(model: EmotionNet) -> str:
    """SHA-256 over the backbone's parameter names and float32 values: names the backbone a
    remote head was trained on, so a device can tell it runs the same one."""
    digest = hashlib.sha256()
    for name, tensor in model.backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
