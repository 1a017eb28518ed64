"""The models a command runs on the device, on the runtime the user chose (`RUNTIMES`): ONNX
Runtime by default, torch on request.

ONNX files are found by the torch models they were exported from (the export card records the
sha256 of the frame and temporal models' weights and cards): the shipped export in the
package's weights folder for the shipped models, and for any other pair an export made once,
on first use, into a cache folder named by those checksums. A retrained or replaced model
file, or an edited card, therefore never runs with stale ONNX files, and a `--model FILE`
works on ONNX Runtime without a separate step; the one-off export (a few seconds, torch
imported) is announced in one line. Torch is imported only on that first use or with
`--runtime torch`.
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
    TEMPORAL_FP32,
    read_export_card,
    source_entry,
    source_matches,
    verified_file,
)
from emofl.common.edge.sessions import DEFAULT_THREADS, OnnxFrameModel, OnnxTemporalStep
from emofl.common.edge.temporal_smoother import OnnxTemporalSmoother
from emofl.common.model.model_cards import (
    SHIPPED_MODEL,
    SHIPPED_TEMPORAL_MODEL,
    WEIGHTS_DIR,
    ModelError,
)
from emofl.common.model.smoothers import Smoother
from emofl.common.storage.input_files import check_input_file

Notify = Callable[[str], None]


class FrameModel(Protocol):
    """What inference needs of a frame model, on any runtime."""

    backbone_sha256: str | None

    def features(self, faces: np.ndarray) -> np.ndarray: ...

    def logits(self, faces: np.ndarray) -> np.ndarray: ...


def cache_root() -> Path:
    """Where exports made on first use go: $XDG_CACHE_HOME/emofl/onnx (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emofl" / "onnx"


def _matching(folder: Path, model_path: Path, temporal_path: Path) -> dict | None:
    """The card of the export in `folder` when it was made from these two models, else None."""
    if not (folder / CARD).is_file():
        return None
    card = read_export_card(folder)
    made_from_both = (source_matches(card, "frame_model", model_path)
                      and source_matches(card, "temporal_model", temporal_path))
    return card if made_from_both else None


def export_for(model_path: Path, temporal_path: Path, notify: Notify) -> tuple[Path, dict]:
    """The export folder made from the frame model at `model_path` and the temporal model at
    `temporal_path`, and its card: the shipped one, a cached one, or (announced through
    `notify`) one made now into the cache."""
    shipped = (model_path, temporal_path) == (SHIPPED_MODEL, SHIPPED_TEMPORAL_MODEL)
    if shipped and (card := _matching(WEIGHTS_DIR, model_path, temporal_path)):
        return WEIGHTS_DIR, card
    sources = [source_entry(model_path), source_entry(temporal_path)]
    folder = cache_root() / hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:32]
    if card := _matching(folder, model_path, temporal_path):
        return folder, card
    why = ("the shipped ONNX files are missing or were made from other weights" if shipped
           else f"no ONNX export of {model_path} and {temporal_path.name} yet")
    from emofl.common.edge.export_run import ExportSettings, export_models

    try:
        export_models(ExportSettings(out=folder, model=str(model_path),
                                     temporal_model=str(temporal_path)),
                      on_start=lambda: notify(f"{why}; exporting them once to {folder}"))
    except OSError:  # another process may have just put the same export there
        if not _matching(folder, model_path, temporal_path):
            raise
    return folder, read_export_card(folder)


def _checked(path: str | None, shipped: Path, what: str) -> Path:
    return check_input_file(Path(path) if path else shipped, what, ModelError)


def load_frame_model(runtime: str, model: str | None, notify: Notify,
                     threads: int = DEFAULT_THREADS, temporal_model: str | None = None
                     ) -> FrameModel:
    """The frame model at `model` (None: the shipped one) on `runtime`; `temporal_model` is
    the temporal model it is exported beside (None: the shipped one)."""
    if runtime == "torch":
        from emofl.client.inference.torch_frame_model import TorchFrameModel
        from emofl.common.model.frame_store import load_model

        return TorchFrameModel(load_model(model)[0])
    folder, card = export_for(_checked(model, SHIPPED_MODEL, "model file"),
                              _checked(temporal_model, SHIPPED_TEMPORAL_MODEL, "temporal model"),
                              notify)
    path = verified_file(folder, card, RUNTIME_FRAME_FILES[runtime])
    return OnnxFrameModel(path, card["source"]["frame_model"].get("backbone_sha256"), threads)


def load_temporal_smoother(runtime: str, model: str | None, temporal_model: str | None,
                           notify: Notify) -> Smoother:
    """The temporal model at `temporal_model` (None: the shipped one) as a per-participant
    smoother on `runtime` (either ONNX runtime runs the fp32 temporal graph)."""
    if runtime == "torch":
        from emofl.common.model.temporal import TemporalSmoother
        from emofl.common.model.temporal_store import load_temporal_model

        return TemporalSmoother(load_temporal_model(temporal_model)[0])
    folder, card = export_for(_checked(model, SHIPPED_MODEL, "model file"),
                              _checked(temporal_model, SHIPPED_TEMPORAL_MODEL, "temporal model"),
                              notify)
    return OnnxTemporalSmoother(OnnxTemporalStep(verified_file(folder, card, TEMPORAL_FP32)))

