"""One export: the frame model (fp32 and int8) and the temporal model as ONNX files in a new
folder, with the card that records where each came from and how it measures.

The files are written to a hidden folder beside `out` and renamed to `out` at the end, so an
export that fails leaves nothing behind, and `out` never holds a mix of two exports.
"""

import json
import logging
import secrets
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from emofl.common.data.datasets import load_dataset
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.edge import evaluation
from emofl.common.edge.calibration import calibration_faces
from emofl.common.edge.files import (
    CARD,
    FRAME_FP32,
    FRAME_INT8,
    REGENERATE,
    TEMPORAL_FP32,
    EdgeModelError,
    file_entry,
    source_entry,
)
from emofl.common.edge.onnx_export import export_frame_model, export_temporal_model
from emofl.common.edge.quantization import quantize_frame_model
from emofl.common.model.frame_store import SHIPPED_MODEL, backbone_sha256, load_model
from emofl.common.model.temporal_store import SHIPPED_TEMPORAL_MODEL, load_temporal_model


@dataclass(frozen=True)
class ExportSettings:
    """What to export (None: the shipped models), where to, and on which faces to calibrate
    (None: synthetic) and measure (None: not measured)."""

    out: Path
    model: str | None = None
    temporal_model: str | None = None
    calibration_data: str | None = None
    val_data: str | None = None
    command: str = ""


def check_out_folder(out: Path) -> None:
    """EdgeModelError when `out` exists and is not an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EdgeModelError(f"--out {out} exists and is not an empty folder; choose a new one")


@contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs advice on the root logger; a command prints one result."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def export_models(settings: ExportSettings, on_start: Callable[[], None] = lambda: None) -> dict:
    """Write the export to `settings.out` (which must not be a non-empty folder); its card.
    `on_start` is called once the models have loaded, before the export's slow part."""
    check_out_folder(settings.out)
    model_path = Path(settings.model) if settings.model else SHIPPED_MODEL
    temporal_path = (Path(settings.temporal_model) if settings.temporal_model
                     else SHIPPED_TEMPORAL_MODEL)
    model, model_card = load_model(model_path)
    temporal, _ = load_temporal_model(temporal_path)
    faces, calibration = calibration_faces(model_card, settings.calibration_data)
    on_start()
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    work = settings.out.parent / f".{settings.out.name}.partial-{secrets.token_hex(4)}"
    work.mkdir()  # not mkdtemp: the folder gets the user's usual permissions
    try:
        export_frame_model(model, work / FRAME_FP32)
        with _quiet_quantizer():
            quantize_frame_model(work / FRAME_FP32, work / FRAME_INT8, faces)
        export_temporal_model(temporal, work / TEMPORAL_FP32)
        files = {FRAME_FP32: {"model": "frame", "precision": "fp32"},
                 FRAME_INT8: {"model": "frame", "precision": "int8 static (QDQ), per-channel "
                              "weights, uint8 activations, min/max calibration"},
                 TEMPORAL_FP32: {"model": "temporal", "precision": "fp32",
                                 **evaluation.temporal_deviation(temporal,
                                                                 work / TEMPORAL_FP32)}}
        torch_accuracy = (_measure_frame_files(model, work, files, settings.val_data)
                          if settings.val_data else None)
        card = {
            "name": "emofl ONNX export",
            "source": {"frame_model": {"path": settings.model or "shipped",
                                       **source_entry(model_path),
                                       "architecture": model_card.get("architecture"),
                                       "backbone_sha256": backbone_sha256(model),
                                       "validation_accuracy": torch_accuracy},
                       "temporal_model": {"path": settings.temporal_model or "shipped",
                                          **source_entry(temporal_path)}},
            "calibration": calibration,
            "files": {name: {**file_entry(work / name), **entry}
                      for name, entry in files.items()},
            "command": settings.command, "regenerate_shipped": REGENERATE}
        (work / CARD).write_text(json.dumps(card, indent=2) + "\n")
        if settings.out.exists():
            settings.out.rmdir()  # empty, checked above
        work.rename(settings.out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return card


def _measure_frame_files(model, work: Path, files: dict, val_data: str) -> float:
    """Add each frame graph's accuracy on `val_data` and agreement with the torch model to
    its entry in `files`; the torch model's own accuracy."""
    val = load_dataset(val_data)
    faces = preprocess_faces(val.images)
    reference = evaluation.torch_logits(model, faces)
    for name in (FRAME_FP32, FRAME_INT8):
        files[name]["validation"] = {
            "data": val_data, **evaluation.frame_fidelity(work / name, reference, faces,
                                                          val.labels)}
    return float((reference.argmax(1) == val.labels).mean())
