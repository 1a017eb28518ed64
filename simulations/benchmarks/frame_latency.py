"""Per-face inference cost of a frame model on one CPU thread, the budget issue #11 sets (≤ 2 ms).

Usage: python -m emofl.simulations.benchmarks.frame_latency [--model FILE ...] [--repeats 200]
Each model classifies batches of 1 and of 9 random 48x48 faces (9: a gallery meeting's faces
in one frame) in eval mode without autograd; the figure is the median over the repeats of a
batch's wall time divided by its faces. Models are timed interleaved, so that machine noise
hits each alike. Without --model, the shipped model is timed.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from emofl.common.model.frame_store import load_model

BATCH_SIZES = (1, 9)


def _timer(model: torch.nn.Module, batch: int):
    faces = torch.rand(batch, 1, 48, 48)

    def run() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            model(faces)
        return (time.perf_counter() - started) / batch

    return run


def measure(models: list[Path | None], repeats: int) -> list[dict]:
    """Median milliseconds per face for each model and batch size, with the model's size."""
    torch.set_num_threads(1)
    rows, timers = [], []
    for path in models:
        model, card = load_model(path)
        model.eval()
        parameters = sum(p.numel() for p in model.parameters())
        for batch in BATCH_SIZES:
            rows.append({"model": str(path or "shipped"), "architecture": card["architecture"],
                         "parameters": parameters, "batch": batch, "times": []})
            timers.append(_timer(model, batch))
    for timer in timers:  # warm-up
        for _ in range(10):
            timer()
    for _ in range(repeats):
        for row, timer in zip(rows, timers, strict=True):
            row["times"].append(timer())
    for row in rows:
        row["ms_per_face_median"] = round(1000 * statistics.median(row.pop("times")), 3)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="model file (repeatable); default: the shipped model")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(measure(args.model or [None], args.repeats), indent=2))


if __name__ == "__main__":
    main()
