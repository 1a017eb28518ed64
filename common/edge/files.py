"""The files of one export and its card: names, checksums, and the checks that tie them to the
torch weights they were made from.

An export folder holds `FRAME_FP32`, `FRAME_INT8`, `TEMPORAL_FP32` and `CARD`. The card records,
per file, its opset, sha256 and size (and, when measured, its accuracy), and the sha256 of the
torch model files it was exported from, so the runtime can tell ONNX files that belong to the
weights in use from stale or damaged ones. Reading and checking needs neither torch nor onnx.
"""

import hashlib
import json
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.model.model_cards import card_path

FRAME_FP32 = "frame_model.onnx"
FRAME_INT8 = "frame_model.int8.onnx"
TEMPORAL_FP32 = "temporal_model.onnx"
CARD = "onnx_card.json"
# The graphs' input and output names: what the runtime feeds and fetches.
FRAME_INPUTS, FRAME_OUTPUTS = ("faces",), ("features", "logits")
TEMPORAL_INPUTS, TEMPORAL_OUTPUTS = ("probs", "h0", "c0"), ("logits", "h", "c")
# One opset for every graph: 17 is the newest the TorchScript exporter and ONNX Runtime's
# quantizer both handle without GroupNormalization (opset 18), which the quantizer leaves fp32.
OPSET = 17
# Inference runtimes of `emofl classify` and `emofl analyze`, the first the default: ONNX
# Runtime with the fp32 or the int8 frame graph, or today's torch model.
RUNTIMES = ("onnx", "onnx-int8", "torch")
RUNTIME_FRAME_FILES = {"onnx": FRAME_FP32, "onnx-int8": FRAME_INT8}
REGENERATE = ("emofl export --out DIR --calibration-data ../shared/data/fer2013/train "
              "--val-data ../shared/data/fer2013/val && cp DIR/* common/weights/")


class EdgeModelError(UserError):
    """ONNX files that are missing, damaged, or made from other weights than those in use."""


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict:
    """A card entry's checksum part: opset, sha256 and size of the file at `path`."""
    return {"opset": OPSET, "sha256": sha256_of(path), "bytes": path.stat().st_size}


def read_export_card(folder: str | Path) -> dict:
    """The card of the export in `folder`; EdgeModelError when it is missing or not a JSON
    object with a "files" object."""
    path = Path(folder) / CARD
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeModelError(f"no ONNX export card in {folder} ({CARD} is missing)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise EdgeModelError(f"ONNX export card {path} cannot be read: {err}") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise EdgeModelError(f"ONNX export card {path} has no \"files\" object")
    return card


def source_entry(model_path: str | Path) -> dict:
    """What identifies a torch model file: the sha256 of its weights and of its card (the card
    says which architecture the weights are loaded into, so both decide the graph)."""
    card = card_path(model_path)
    return {"sha256": sha256_of(model_path),
            "card_sha256": sha256_of(card) if card.is_file() else None}


def source_matches(card: dict, role: str, model_path: str | Path) -> bool:
    """Whether the card's `role` ("frame_model", "temporal_model") was exported from the file
    at `model_path` and its card, judged by their sha256."""
    source = card.get("source", {}).get(role)
    expected = source_entry(model_path)
    return isinstance(source, dict) and all(source.get(k) == v for k, v in expected.items())


def verified_file(folder: str | Path, card: dict, name: str) -> Path:
    """The path of export file `name` in `folder` after checking its sha256 against the card;
    EdgeModelError naming the file when it is missing, unrecorded or damaged."""
    path = Path(folder) / name
    entry = card["files"].get(name)
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise EdgeModelError(f"ONNX export card in {folder} does not record {name}")
    if not path.is_file():
        raise EdgeModelError(f"ONNX file {path} is missing; regenerate it with `emofl export`")
    if sha256_of(path) != entry["sha256"]:
        raise EdgeModelError(f"ONNX file {path} does not match its card (damaged or replaced); "
                             "re-export the folder with `emofl export`")
    return path
