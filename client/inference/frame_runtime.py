"""The frame model a command runs, on the runtime the user chose (`RUNTIMES`): ONNX Runtime by
default, torch on request.

ONNX files are found by the torch model they were exported from (the export card records the
sha256 of its weights and of its card): the shipped ones in the package's weights folder for
the shipped model, and for any other model file an export made once, on first use, into a
cache folder named by those checksums. A retrained or replaced model file, or an edited card,
therefore never runs with stale ONNX files, and a `--model FILE` works on ONNX Runtime without
a separate step; the one-off export (a few seconds, torch imported) is announced in one line.
Torch is imported only on that first use or with `--runtime torch`.
"""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from emofl.common.edge.files import (
    CARD,
    RUNTIME_FRAME_FILES,
    SHIPPED_DIR,
    EdgeModelError,
    read_export_card,
    source_entry,
    source_matches,
    verified_file,
)
from emofl.common.edge.sessions import DEFAULT_THREADS, OnnxFrameModel
from emofl.common.storage.input_files import check_input_file

SHIPPED_FRAME_MODEL = SHIPPED_DIR / "frame_model.pt"


class FrameModel(Protocol):
    """What inference needs of a frame model, on any runtime."""

    backbone_sha256: str | None

    def features(self, faces: np.ndarray) -> np.ndarray: ...

    def logits(self, faces: np.ndarray) -> np.ndarray: ...


def cache_root() -> Path:
    """Where exports made on first use go: $XDG_CACHE_HOME/emofl/onnx (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emofl" / "onnx"


def _matching(folder: Path, model_path: Path) -> dict | None:
    """The card of the export in `folder` when it was made from `model_path`, else None."""
    if not (folder / CARD).is_file():
        return None
    card = read_export_card(folder)
    return card if source_matches(card, "frame_model", model_path) else None


def export_for(model_path: Path, notify: Callable[[str], None]) -> tuple[Path, dict]:
    """The export folder made from `model_path` and its card: the shipped one, a cached one,
    or (announced through `notify`) one made now into the cache."""
    if model_path == SHIPPED_FRAME_MODEL and (card := _matching(SHIPPED_DIR, model_path)):
        return SHIPPED_DIR, card
    source = source_entry(model_path)
    folder = cache_root() / hashlib.sha256(json.dumps(source).encode()).hexdigest()[:32]
    if card := _matching(folder, model_path):
        return folder, card
    why = ("the shipped ONNX files are missing or were made from other weights"
           if model_path == SHIPPED_FRAME_MODEL else f"no ONNX export of {model_path} yet")
    from emofl.common.edge.export_run import ExportSettings, export_models

    try:
        export_models(ExportSettings(out=folder, model=str(model_path)),
                      on_start=lambda: notify(f"{why}; exporting it once to {folder}"))
    except OSError:  # another process may have just put the same export there
        if not _matching(folder, model_path):
            raise
    return folder, read_export_card(folder)


def load_frame_model(runtime: str, model: str | None, notify: Callable[[str], None],
                     threads: int = DEFAULT_THREADS) -> FrameModel:
    """The frame model at `model` (None: the shipped one) on `runtime`."""
    if runtime == "torch":
        from emofl.client.inference.torch_frame_model import TorchFrameModel
        from emofl.common.model.frame_store import load_model

        return TorchFrameModel(load_model(model)[0])
    model_path = check_input_file(Path(model) if model else SHIPPED_FRAME_MODEL, "model file",
                                  EdgeModelError)
    folder, card = export_for(model_path, notify)
    path = verified_file(folder, card, RUNTIME_FRAME_FILES[runtime])
    return OnnxFrameModel(path, card["source"]["frame_model"].get("backbone_sha256"), threads)
