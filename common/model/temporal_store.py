"""The temporal model's files: saving, loading, and the temporal model shipped in the package
(`weights_store` gives the file convention)."""

from pathlib import Path

from emofl.common.model.temporal import HIDDEN_SIZE, TemporalModel
from emofl.common.model.weights_store import WEIGHTS_DIR, load_weights, read_card, save_weights

SHIPPED_TEMPORAL_MODEL = WEIGHTS_DIR / "temporal_model.pt"


def save_temporal_model(model: TemporalModel, path: str | Path, card: dict) -> None:
    """Write the model and its card, with the architecture added, atomically."""
    architecture = {"type": "DPLSTM", "hidden_size": model.hidden_size}
    save_weights(model, path, {"architecture": architecture, **card})


def load_temporal_model(path: str | Path | None = None) -> tuple[TemporalModel, dict]:
    """The temporal model at `path` (the shipped one when None) in eval mode, and its card."""
    model_path = Path(path) if path else SHIPPED_TEMPORAL_MODEL
    card = read_card(model_path)
    model = TemporalModel(card.get("architecture", {}).get("hidden_size", HIDDEN_SIZE))
    load_weights(model, model_path)
    model.eval()
    return model, card
