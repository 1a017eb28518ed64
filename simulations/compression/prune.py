"""Prune the shipped frame model and fine-tune the dense result on the public faces.

Usage: python -m emofl.simulations.compression.prune --data ../shared/data/fer2013/train
  --val-data ../shared/data/fer2013/val --fraction 0.5 --epochs 4 --lr 1e-3
  --out runs/compression/pruned50.pt
Fine-tuning is plain cross-entropy with label smoothing and augmentation (`train_epoch`, the
loop public pre-training uses); val accuracy is printed after pruning and after every epoch.
"""

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from emofl.common.model.training import evaluate, train_epoch
from emofl.simulations.compression.fine_tuning import FineTuneSettings, fine_tune
from emofl.simulations.compression.model_files import save_compressed
from emofl.simulations.compression.pruning import prune_vgg
from emofl.simulations.compression.public_faces import public_split, teacher_and_faces

LABEL_SMOOTHING = 0.1  # as in the shipped model's public pre-training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training set the public split is of")
    parser.add_argument("--val-data", required=True)
    parser.add_argument("--fraction", type=float, default=0.5,
                        help="share of each 3x3 convolution's channels to remove")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    teacher, card, public, validation = teacher_and_faces(args.data, args.val_data)
    model = prune_vgg(teacher, args.fraction)
    before = evaluate(model, validation.images, validation.labels).accuracy
    print(f"pruned, before fine-tuning: val accuracy {before:.4f}", flush=True)
    settings = FineTuneSettings(epochs=args.epochs, learning_rate=args.lr)

    def step(loader, optimizer, generator, schedule) -> float:
        return train_epoch(model, loader, optimizer, generator, schedule,
                           label_smoothing=LABEL_SMOOTHING)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    history = fine_tune(model, step, public=public, validation=validation, settings=settings,
                        checkpoint=args.out.with_name(f"{args.out.stem}_checkpoint.pt"))
    save_compressed(model, args.out, {
        "method": "L1 structured pruning in whole GroupNorm groups, then fine-tuning",
        "teacher": "shipped frame model", "fraction": args.fraction,
        "public_split": public_split(card, args.data), "public_faces": len(public),
        "val_accuracy_before_fine_tuning": before, "settings": asdict(settings),
        "label_smoothing": LABEL_SMOOTHING, "history": history,
        "wall_seconds_this_process": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
