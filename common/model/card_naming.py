"""Where a model file's card lives: `<stem>_card.json` beside it. Kept free of torch so the
ONNX runtime can find a card without importing it."""

from pathlib import Path


def card_path(model_path: str | Path) -> Path:
    """The card file of the model file at `model_path`."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_card.json")
