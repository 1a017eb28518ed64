"""What the private half can add to the public model at most: central, non-private fine-tuning.

Usage: python -m emofl.simulations.benchmarks.central_finetune MODEL TRAIN VAL
           [--on private|all] [--epochs 10] [--lr 3e-4] [--out F.json]
The federated DP stage (docs/benchmarks.md §9) starts from the public model and sees only the
private faces its card's public split leaves to the clients. This is that stage's ceiling
without federation, label skew or noise: the same start, the private faces in one place
(`--on all`: the public ones too), AdamW with a cosine decay, the augmentation and label
smoothing of pre-training, and FER2013 val scored after every epoch. Nothing here is private.
"""

import argparse
import json
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from emofl.cli import USER_ERROR_EXIT, is_user_error
from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import to_faces
from emofl.common.data.partition import split_public
from emofl.common.errors import UserError
from emofl.common.model.frame_store import load_model
from emofl.common.model.training import evaluate, train_epoch
from emofl.common.storage.atomic_io import write_json


def training_faces(card: dict, data: str, on: str) -> TensorDataset:
    """The faces the model's public split leaves private (`on` "private") or all of `data`."""
    dataset = load_dataset(data)
    if on == "private":
        split = card.get("public_split")
        if not split:
            raise UserError("the model's card names no public split, so its private faces "
                            "are unknown; give a model of `emofl pretrain` or use --on all")
        _, private_idx = split_public(len(dataset), split["fraction"], split["seed"])
        dataset = dataset.subset(private_idx)
    faces = to_faces(dataset)
    return TensorDataset(faces.images, faces.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("train")
    parser.add_argument("val")
    parser.add_argument("--on", choices=("private", "all"), default="private")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.epochs < 1 or not args.lr > 0:
        parser.error("--epochs must be at least 1 and --lr positive")
    model, card = load_model(args.model)
    faces = training_faces(card, args.train, args.on)
    val = to_faces(load_dataset(args.val))
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(faces, batch_size=128, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(loader))
    start = latest = evaluate(model, val.images, val.labels)
    curve, started = [], time.perf_counter()
    for _ in tqdm(range(args.epochs), desc=f"central fine-tuning on {args.on}", unit="epoch"):
        train_epoch(model, loader, optimizer, generator, schedule, label_smoothing=0.1)
        latest = evaluate(model, val.images, val.labels)
        curve.append(latest.accuracy)
        tqdm.write(f"epoch {len(curve)}: val {latest.accuracy:.2%}")
    result = {"model": args.model, "on": args.on, "faces": len(faces), "epochs": args.epochs,
              "learning_rate": args.lr, "start_accuracy": start.accuracy,
              "val_accuracy_per_epoch": curve, "final": latest.to_dict(),
              "seconds": time.perf_counter() - started}
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # a user's mistake in one line; a fault in the code as it is
        if not is_user_error(err):
            raise
        print(f"central_finetune: error: {err}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
