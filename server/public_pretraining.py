"""Non-private pre-training on the public split: the server's starting point for DP fine-tuning.

A fixed, seeded fraction of a training set is treated as public, consented data held by the
server (DESIGN.md, "DP accuracy on FER2013"). Training on it costs no client privacy; the
resulting model's card records the split so that `emofl simulate --init-model` keeps those
faces out of every client, and ε covers exactly the federated rest.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from emofl.common.datasets import load_dataset
from emofl.common.federated_data import PublicSplit, to_faces
from emofl.common.model_store import build_model, save_model
from emofl.common.partition import split_public
from emofl.common.training import evaluate, train_epoch


@dataclass(frozen=True)
class PretrainSettings:
    """data: training set; fraction/seed: the public split; val_data: for reporting only."""

    data: str
    out: str
    fraction: float = 0.2
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    model_width: int = 32
    val_data: str = ""
    command: str = ""


def pretrain(settings: PretrainSettings, progress: bool = True) -> dict:
    """Train on the public split only; save the model and its card; return the card."""
    dataset = load_dataset(settings.data)
    public_idx, _ = split_public(len(dataset), settings.fraction, settings.seed)
    faces = to_faces(dataset.subset(public_idx))
    validation = to_faces(load_dataset(settings.val_data)) if settings.val_data else None
    torch.manual_seed(settings.seed)
    model = build_model({"width": settings.model_width})
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(TensorDataset(faces.images, faces.labels), batch_size=settings.batch_size,
                        shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * len(loader))
    history = []
    for epoch in tqdm(range(settings.epochs), desc="public pre-training", unit="epoch",
                      disable=not progress):
        loss = train_epoch(model, loader, optimizer, generator, schedule)
        entry = {"epoch": epoch + 1, "train_loss": loss}
        if validation is not None and ((epoch + 1) % 5 == 0 or epoch + 1 == settings.epochs):
            entry["val_accuracy"] = evaluate(model, validation.images, validation.labels).accuracy
        history.append(entry)
    split = PublicSplit(settings.data, settings.fraction, settings.seed)
    card = {
        "name": "emofl frame model (public pre-training)",
        "training": {"method": "non-private central training on the public split",
                     "public_faces": len(public_idx), "private_faces": len(dataset) - len(public_idx),
                     "epochs": settings.epochs, "batch_size": settings.batch_size,
                     "learning_rate": settings.learning_rate, "seed": settings.seed,
                     "command": settings.command, "history": history},
        "public_split": split.to_dict(),
        "privacy": {"dp": False, "guarantee": "none needed: only public, consented faces seen"},
    }
    if validation is not None:
        card["validation"] = evaluate(model, validation.images, validation.labels).to_dict()
    save_model(model, Path(settings.out), card)
    return card

