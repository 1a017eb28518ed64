"""Saving and loading temporal models with their cards, and the temporal model shipped in the
package. Files follow the frame model's convention (`model_store`): a plain state_dict, and
`<stem>_card.json` beside it saying how it was trained and how to rebuild it."""

from pathlib import Path

import torch

from emofl.common.model.frame_store import ModelError, card_path, read_card
from emofl.common.model.temporal import HIDDEN_SIZE, TemporalModel
from emofl.common.storage import atomic_io

SHIPPED_TEMPORAL_MODEL = Path(__file__).parents[1] / "weights" / "temporal_model.pt"


def save_temporal_model(model: TemporalModel, path: str | Path, card: dict) -> None:
    """Write the state_dict and its card (with the architecture added) atomically."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_io.torch_save(path, state)
    architecture = {"type": "DPLSTM", "hidden_size": model.hidden_size}
    atomic_io.write_json(card_path(path), {"architecture": architecture, **card})


def load_temporal_model(path: str | Path | None = None) -> tuple[TemporalModel, dict]:
    """The temporal model at `path` (the shipped one when None) in eval mode, and its card."""
    model_path = Path(path) if path else SHIPPED_TEMPORAL_MODEL
    card = read_card(model_path)
    model = TemporalModel(card.get("architecture", {}).get("hidden_size", HIDDEN_SIZE))
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # torch raises many types for a file that is not its own
        reason = str(err).splitlines()[0][:80]
        raise ModelError(f"cannot load temporal model from {model_path}: {reason}") from None
    model.eval()
    return model, card
