"""The frame model's files: building it from its card's architecture, saving, loading, and the
model shipped in the package (`weights_store` gives the file convention)."""

import hashlib
from pathlib import Path

import torch

from emofl.common.model.card_checks import architecture_section, bounded_int, one_of
from emofl.common.model.emotion_net import FEATURE_DIM, EmotionNet
from emofl.common.model.model_cards import SHIPPED_MODEL, card_path, read_card
from emofl.common.model.weights_store import load_weights, save_weights
from emofl.common.protocol.choices import MODEL_KINDS, POOL_OF_OLDER_FILES, POOLS

# The largest backbone a card may ask for: far above any model trained here (width 24,
# 128 features), far below what would exhaust a device's memory.
MAX_WIDTH = 256
MAX_FEATURE_DIM = 1024


def architecture_of(model: EmotionNet) -> dict:
    """What `build_model` needs to rebuild this model's shape."""
    return {"kind": model.kind, "width": model.width, "feature_dim": model.backbone.feature_dim,
            "pool": model.pool}


def build_model(architecture: dict | None = None, source: str = "model architecture",
                ) -> EmotionNet:
    """A fresh model of `architecture` ({"kind", "width", "feature_dim", "pool"}, each optional;
    a card without "pool" is from before depthwise pooling existed: average);
    ModelError naming `source` (e.g. the card it came from) when a value is of the wrong type
    or out of bounds, checked before any layer is allocated (`card_checks`)."""
    arch = architecture_section(architecture, source)
    return EmotionNet(width=bounded_int(arch, "width", 16, MAX_WIDTH, source),
                      feature_dim=bounded_int(arch, "feature_dim", FEATURE_DIM, MAX_FEATURE_DIM,
                                              source),
                      kind=one_of(arch, "kind", MODEL_KINDS[0], MODEL_KINDS, source),
                      pool=one_of(arch, "pool", POOL_OF_OLDER_FILES, POOLS, source))


def save_model(model: EmotionNet, path: str | Path, card: dict) -> None:
    """Write the model and its card, with the architecture added, atomically."""
    save_weights(model, path, {"architecture": architecture_of(model), **card})


def read_model_card(path: str | Path | None = None) -> dict:
    """The card of the frame model at `path` (the shipped model when None)."""
    return read_card(Path(path) if path else SHIPPED_MODEL)


def load_model(path: str | Path | None = None) -> tuple[EmotionNet, dict]:
    """The model at `path` (the shipped model when None) in eval mode, and its card."""
    model_path = Path(path) if path else SHIPPED_MODEL
    card = read_card(model_path)
    model = build_model(card.get("architecture"), f"model card {card_path(model_path)}")
    load_weights(model, model_path)
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
