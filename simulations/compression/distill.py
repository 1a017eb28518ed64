"""Distil the shipped frame model into a smaller VGG student on the public faces.

Usage: python -m emofl.simulations.compression.distill --data ../shared/data/fer2013/train
  --val-data ../shared/data/fer2013/val --width 8 --epochs 5 --temperature 4 --alpha 0.9
  --out runs/compression/student8.pt
The student is a fresh `EmotionNet(kind="vgg")` of `--width` (same d, so the encrypted head's
layout holds), or with `--init` a compressed model file (e.g. a pruned model) to start from.
"""

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.training import evaluate
from emofl.simulations.compression.distillation import distill_epoch
from emofl.simulations.compression.fine_tuning import FineTuneSettings, fine_tune
from emofl.simulations.compression.model_files import load_compressed, save_compressed
from emofl.simulations.compression.public_faces import public_split, teacher_and_faces


def _student(width: int, init: Path | None, seed: int) -> torch.nn.Module:
    if init is not None:
        return load_compressed(init)[0]
    torch.manual_seed(seed)
    return EmotionNet(width=width, kind="vgg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training set the public split is of")
    parser.add_argument("--val-data", required=True)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--init", type=Path, help="compressed model file to start from")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the KL term")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    teacher, card, public, validation = teacher_and_faces(args.data, args.val_data)
    settings = FineTuneSettings(epochs=args.epochs, learning_rate=args.lr)
    student = _student(args.width, args.init, settings.seed)
    before = evaluate(student, validation.images, validation.labels).accuracy

    def step(loader, optimizer, generator, schedule) -> float:
        return distill_epoch(student, teacher, loader, optimizer, generator, schedule,
                             temperature=args.temperature, alpha=args.alpha)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    history = fine_tune(student, step, public=public, validation=validation, settings=settings,
                        checkpoint=args.out.with_name(f"{args.out.stem}_checkpoint.pt"))
    save_compressed(student, args.out, {
        "method": "knowledge distillation (KL at temperature T plus cross-entropy)",
        "teacher": "shipped frame model", "student": str(args.init or f"vgg width {args.width}"),
        "temperature": args.temperature, "alpha": args.alpha,
        "public_split": public_split(card, args.data), "public_faces": len(public),
        "val_accuracy_before": before, "settings": asdict(settings), "history": history,
        "wall_seconds_this_process": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
