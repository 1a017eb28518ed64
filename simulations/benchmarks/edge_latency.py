"""Per-face latency, size and val accuracy of the frame model per runtime and per compressed
model (issue #14), on one CPU thread.

Usage: python -m emofl.simulations.benchmarks.edge_latency --data ../shared/data/fer2013/train
           --val-data ../shared/data/fer2013/val [--compressed runs/compression/pruned25.pt ...]
           [--repeats 300] [--work runs/edge_latency] [--results docs/results]
Rows: the shipped model on torch, ONNX fp32 and ONNX int8 (the shipped files); each
`--compressed` model (from `simulations/compression`) exported to ONNX fp32 and int8 the way
`emofl export` does, calibrated on the shipped card's public faces. Each graph classifies
batches of 1 and 9 random faces; the figure is the median over interleaved repeats of a
batch's wall time divided by its faces. Writes edge_latency.json into --results.
"""

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from emofl.common.data.datasets import load_dataset
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.edge import evaluation
from emofl.common.edge.calibration import calibration_faces
from emofl.common.edge.files import FRAME_FP32, FRAME_INT8, read_export_card, verified_file
from emofl.common.edge.onnx_export import export_frame_model
from emofl.common.edge.quantization import quantize_frame_model
from emofl.common.edge.sessions import OnnxFrameModel
from emofl.common.model.frame_store import load_model
from emofl.common.model.model_cards import SHIPPED_MODEL, WEIGHTS_DIR
from emofl.simulations.compression.model_files import load_compressed

BATCH_SIZES = (1, 9)


def _timer(logits, batch: int):
    faces = np.random.default_rng(batch).standard_normal((batch, 1, 48, 48)).astype(np.float32)

    def run() -> float:
        started = time.perf_counter()
        logits(faces)
        return (time.perf_counter() - started) / batch

    return run


def _entries(args) -> list[dict]:
    """Every model to time: name, logits function, file size, torch model for reference."""
    model, card = load_model(None)
    shipped = read_export_card(WEIGHTS_DIR)
    entries = [{"name": "shipped, torch fp32", "model": model,
                "bytes": SHIPPED_MODEL.stat().st_size,
                "logits": lambda x: evaluation.torch_logits(model, x)}]
    for name, label in ((FRAME_FP32, "shipped, ONNX fp32"), (FRAME_INT8, "shipped, ONNX int8")):
        path = verified_file(WEIGHTS_DIR, shipped, name)
        entries.append({"name": label, "model": model, "bytes": path.stat().st_size,
                        "logits": OnnxFrameModel(path).logits})
    faces, _ = calibration_faces(card, args.data)
    for compressed in args.compressed:
        student, _ = load_compressed(compressed)
        folder = args.work / compressed.stem
        folder.mkdir(parents=True, exist_ok=True)
        export_frame_model(student, folder / FRAME_FP32)
        logging.disable(logging.WARNING)  # the quantizer's advice, on the root logger
        quantize_frame_model(folder / FRAME_FP32, folder / FRAME_INT8, faces)
        logging.disable(logging.NOTSET)
        for name, precision in ((FRAME_FP32, "ONNX fp32"), (FRAME_INT8, "ONNX int8")):
            path = folder / name
            entries.append({"name": f"{compressed.stem}, {precision}", "model": student,
                            "bytes": path.stat().st_size, "logits": OnnxFrameModel(path).logits})
    return entries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training set of the public faces")
    parser.add_argument("--val-data", required=True)
    parser.add_argument("--compressed", type=Path, action="append", default=[])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("runs/edge_latency"))
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    entries = _entries(args)
    val = load_dataset(args.val_data)
    val_faces = preprocess_faces(val.images)
    rows, timers = [], []
    for entry in entries:
        predicted = np.concatenate([entry["logits"](val_faces[i:i + 256]).argmax(1)
                                    for i in range(0, len(val_faces), 256)])
        reference = evaluation.torch_logits(entry["model"], val_faces).argmax(1)
        for batch in BATCH_SIZES:
            rows.append({"model": entry["name"], "bytes": entry["bytes"], "batch": batch,
                         "val_accuracy": float((predicted == val.labels).mean()),
                         "agreement_with_own_torch_fp32": float((predicted == reference).mean()),
                         "times": []})
            timers.append(_timer(entry["logits"], batch))
    for timer in timers:  # warm-up
        for _ in range(20):
            timer()
    for _ in range(args.repeats):
        for row, timer in zip(rows, timers, strict=True):
            row["times"].append(timer())
    for row in rows:
        row["ms_per_face_median"] = round(1000 * statistics.median(row.pop("times")), 4)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "edge_latency.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(f"{row['model']:28s} batch {row['batch']}: {row['ms_per_face_median']:.4f} ms/face,"
              f" val {100 * row['val_accuracy']:.2f}%, {row['bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
