"""The temporal model's files: saving, loading, and the temporal model shipped in the package
(`weights_store` gives the file convention)."""

from pathlib import Path

from emofl.common.model.card_checks import architecture_section, bounded_int
from emofl.common.model.model_cards import SHIPPED_TEMPORAL_MODEL, card_path, read_card
from emofl.common.model.temporal import HIDDEN_SIZE, TemporalModel
from emofl.common.model.weights_store import load_weights, save_weights

# The largest LSTM a card may ask for: far above the shipped one (32), far below what would
# exhaust a device's memory.
MAX_HIDDEN_SIZE = 256


def save_temporal_model(model: TemporalModel, path: str | Path, card: dict) -> None:
    """Write the model and its card, with the architecture added, atomically."""
    architecture = {"type": "DPLSTM", "hidden_size": model.hidden_size}
    save_weights(model, path, {"architecture": architecture, **card})


def load_temporal_model(path: str | Path | None = None) -> tuple[TemporalModel, dict]:
    """The temporal model at `path` (the shipped one when None) in eval mode, and its card;
    ModelError when the card's hidden_size is not an integer 1..MAX_HIDDEN_SIZE."""
    model_path = Path(path) if path else SHIPPED_TEMPORAL_MODEL
    card = read_card(model_path)
    source = f"model card {card_path(model_path)}"
    architecture = architecture_section(card.get("architecture"), source)
    model = TemporalModel(bounded_int(architecture, "hidden_size", HIDDEN_SIZE, MAX_HIDDEN_SIZE,
                                      source))
    load_weights(model, model_path)
    model.eval()
    return model, card
