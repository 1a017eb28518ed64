"""`emofl export`: the frame and temporal models as ONNX files (fp32, and the frame model as
int8 calibrated on public faces) for ONNX Runtime on the device."""

import argparse
from pathlib import Path

from emofl.commands.options import command_line


def add(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export", help="the models as ONNX files (fp32 and int8) for the "
                            "device's ONNX Runtime, with a card of checksums and accuracy")
    p.add_argument("--out", required=True, help="new (or empty) folder to write")
    p.add_argument("--model", default=None, help="frame model file (default: the shipped model)")
    p.add_argument("--temporal-model", default=None,
                   help="temporal model file (default: the shipped one)")
    p.add_argument("--calibration-data", default=None,
                   help="FER2013 training data holding the public split in the model's card: "
                   "calibrate int8 on that split (default: built-in synthetic faces)")
    p.add_argument("--val-data", default=None,
                   help="labelled faces: record each file's accuracy and agreement with torch")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> dict:
    from emofl.common.edge.export_run import ExportSettings, export_models

    card = export_models(ExportSettings(
        out=Path(args.out), model=args.model, temporal_model=args.temporal_model,
        calibration_data=args.calibration_data, val_data=args.val_data, command=command_line()))
    return {"out": args.out, "files": card["files"]}
