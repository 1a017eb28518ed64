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
import time

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import to_faces
from emofl.common.data.partition import split_public
from emofl.common.model.frame_store import load_model
from emofl.common.model.training import evaluate, train_epoch


def training_faces(card: dict, data: str, on: str) -> TensorDataset:
    """The faces the model's public split leaves private (`on` "private") or all of `data`."""
    dataset = load_dataset(data)
    if on == "private":
        split = card["public_split"]
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
    model, card = load_model(args.model)
    faces = training_faces(card, args.train, args.on)
    val = to_faces(load_dataset(args.val))
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(faces, batch_size=128, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(loader))
    start = evaluate(model, val.images, val.labels).accuracy
    curve, started = [], time.perf_counter()
    for _ in tqdm(range(args.epochs), desc=f"central fine-tuning on {args.on}", unit="epoch"):
        train_epoch(model, loader, optimizer, generator, schedule, label_smoothing=0.1)
        curve.append(evaluate(model, val.images, val.labels).accuracy)
        tqdm.write(f"epoch {len(curve)}: val {curve[-1]:.2%}")
    final = evaluate(model, val.images, val.labels)
    text = json.dumps({"model": args.model, "on": args.on, "faces": len(faces),
                       "epochs": args.epochs, "learning_rate": args.lr, "start_accuracy": start,
                       "val_accuracy_per_epoch": curve, "final": final.to_dict(),
                       "seconds": time.perf_counter() - started}, indent=2)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
