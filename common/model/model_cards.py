"""A model file's card: the JSON object `<stem>_card.json` beside it, saying what the model is,
how it was trained and how to rebuild it. Kept free of torch, so that inference on ONNX Runtime
can read cards without importing it."""

import json
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.storage.input_files import check_input_file

# The shipped weights, inside the package: the frame model and the temporal model, each with
# its card (and, in the same folder, the ONNX export made from them).
WEIGHTS_DIR = Path(__file__).parents[1] / "weights"
SHIPPED_MODEL = WEIGHTS_DIR / "frame_model.pt"
SHIPPED_TEMPORAL_MODEL = WEIGHTS_DIR / "temporal_model.pt"


class ModelError(UserError):
    """A model file or its card is missing or does not hold what it should."""


def card_path(model_path: str | Path) -> Path:
    """The card file of the model file at `model_path`."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_card.json")


def read_card(model_path: str | Path) -> dict:
    """The card beside `model_path`; ModelError when either file is missing or the card is not
    a JSON object."""
    model_path = Path(model_path)
    card = card_path(model_path)
    check_input_file(model_path, "model file", ModelError)
    check_input_file(card, "model card", ModelError)
    try:
        data = json.loads(card.read_text())
    except json.JSONDecodeError as err:
        raise ModelError(f"model card is not valid JSON: {card} ({err.msg})") from None
    except UnicodeDecodeError:
        raise ModelError(f"model card is not valid JSON: {card} (not UTF-8 text)") from None
    except RecursionError:
        raise ModelError(f"model card is not valid JSON: {card} (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card is not a JSON object: {card}")
    return data
