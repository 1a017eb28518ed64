"""The one file convention of every shipped or trained model, frame and temporal alike.

A model file is a plain `torch.save`d state_dict (loadable with `torch.load`); its card is the
JSON object beside it, `<stem>_card.json`, recording what the model is, how it was trained and
how to rebuild it. Shipped weights live in `model_cards.WEIGHTS_DIR`, inside the package.
"""

from pathlib import Path

import torch
from torch import nn

from emofl.common.model.model_cards import ModelError, card_path
from emofl.common.storage import atomic_io


def save_weights(model: nn.Module, path: str | Path, card: dict) -> None:
    """Write the model's state_dict and its card atomically, the card last."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_io.torch_save(path, state)
    atomic_io.write_json(card_path(path), card)


def load_weights(model: nn.Module, model_path: str | Path) -> None:
    """Fill `model` with the state_dict at `model_path`; ModelError when it is not one that fits."""
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not its own
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise ModelError(f"cannot load model weights from {model_path}: {reason}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError):
        raise ModelError(f"cannot load model weights from {model_path}: they do not fit the "
                         f"architecture in {card_path(model_path).name}") from None
