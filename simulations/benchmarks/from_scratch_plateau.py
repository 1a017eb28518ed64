"""How many clean, central steps a random model needs to leave chance on synthetic faces.

Usage: python -m emofl.simulations.benchmarks.from_scratch_plateau [--steps 160] [--out F.json]
Why a from-scratch federation ends at chance (docs/benchmarks.md §9): this measures the
non-private, single-machine baseline that any federated recipe can at best match. Each
configuration trains a new model (seed 0) on 2,000 synthetic faces with mini-batches drawn
with replacement, and scores 700 fresh faces every `--every` steps. Two references beside
them: a linear softmax over the raw pixels (is the expression in the pixels at all?).
"""

import argparse
import json
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from emofl.common.data.augmentation import augment_batch
from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import Faces, to_faces
from emofl.common.model.frame_store import build_model
from emofl.common.model.training import evaluate


@dataclass(frozen=True)
class Config:
    """One training recipe: backbone and its pooling, optimizer, learning rate, batch size,
    augmentation."""

    kind: str = "separable"
    pool: str = "average"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 64
    augment: bool = False


CONFIGS = (
    Config(),
    Config(augment=True),
    Config(learning_rate=3e-3),
    Config(optimizer="sgd", learning_rate=0.05),
    Config(batch_size=256),
    Config(kind="vgg"),
    Config(pool="depthwise"),
    Config(pool="depthwise", augment=True),
    Config(kind="vgg", pool="depthwise"),
)


def accuracy_curve(config: Config, train: Faces, val: Faces, steps: int, every: int
                   ) -> list[float]:
    """Validation accuracy after every `every` steps of `config` from a seeded random start."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = build_model({"width": 16, "kind": config.kind, "pool": config.pool})
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), config.learning_rate, momentum=0.9)
    curve = []
    for step in range(1, steps + 1):
        model.train()
        chosen = torch.randint(0, len(train), (config.batch_size,), generator=generator)
        images = train.images[chosen]
        if config.augment:
            images = augment_batch(images, generator)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), train.labels[chosen]).backward()
        optimizer.step()
        if step % every == 0:
            curve.append(evaluate(model, val.images, val.labels).accuracy)
    return curve


def linear_pixels_accuracy(train: Faces, val: Faces, steps: int = 300) -> float:
    """Validation accuracy of a softmax over the 2,304 pixels after `steps` full-batch Adam
    steps (learning rate 1e-3, weight decay 1e-3)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(train.images[0].numel(), 7)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-3)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(train.images.flatten(1)), train.labels).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model(val.images.flatten(1)).argmax(1)
    return float((predicted == val.labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = to_faces(load_dataset("synthetic", synthetic_size=2000, seed=1))
    val = to_faces(load_dataset("synthetic", synthetic_size=700, seed=99))
    rows = []
    for config in tqdm(CONFIGS, desc="configurations", unit="config"):
        started = time.perf_counter()
        curve = accuracy_curve(config, train, val, args.steps, args.every)
        rows.append({**asdict(config), "every": args.every, "val_accuracy": curve,
                     "seconds": time.perf_counter() - started})
        tqdm.write(f"{config}: {' '.join(f'{a:.0%}' for a in curve)}")
    text = json.dumps({"steps": args.steps, "rows": rows,
                       "linear_pixels_val_accuracy": linear_pixels_accuracy(train, val)},
                      indent=2)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
