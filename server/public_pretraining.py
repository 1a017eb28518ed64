"""Non-private pre-training on the public split: the server's starting point for DP fine-tuning.

A fixed, seeded fraction of a training set is treated as public, consented data held by the
server (DESIGN.md, "DP accuracy on FER2013"). Training on it costs no client privacy; the
resulting model's card records the split so that `emofl simulate --init-model` keeps those
faces out of every client, and ε covers exactly the federated rest. With synthetic data the
server simply draws its own faces from a seed no client uses.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from emofl.common.datasets import load_dataset
from emofl.common.face_dataset import FaceDataset
from emofl.common.federated_data import PublicSplit, to_faces
from emofl.common.model_store import build_model, save_model
from emofl.common.partition import split_public
from emofl.common.training import evaluate, train_epoch


@dataclass(frozen=True)
class PretrainSettings:
    """data: training set; fraction/seed: the public split; val_data: for reporting only.

    With data "synthetic", `synthetic_size` faces are drawn from seed + PUBLIC_SYNTHETIC_SEED.
    """

    data: str
    out: str
    fraction: float = 0.2
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    model_width: int = 16
    synthetic_size: int = 2000
    val_data: str = ""
    command: str = ""


PUBLIC_SYNTHETIC_SEED = 7_919


def public_faces(settings: PretrainSettings) -> tuple[FaceDataset, PublicSplit | None, int]:
    """The public faces, the split the federation must exclude (None: nothing to exclude),
    and the number of private faces left to the federation."""
    if settings.data == "synthetic":
        faces = load_dataset("synthetic", synthetic_size=settings.synthetic_size,
                             seed=settings.seed + PUBLIC_SYNTHETIC_SEED)
        return faces, None, 0
    dataset = load_dataset(settings.data)
    public_idx, private_idx = split_public(len(dataset), settings.fraction, settings.seed)
    split = PublicSplit(settings.data, settings.fraction, settings.seed)
    return dataset.subset(public_idx), split, len(private_idx)


def pretrain(settings: PretrainSettings, progress: bool = True) -> dict:
    """Train on the public faces only; save the model and its card; return the card."""
    public, split, num_private = public_faces(settings)
    faces = to_faces(public)
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
    card = {
        "name": "emofl frame model (public pre-training)",
        "training": {"method": "non-private central training on the public split",
                     "data": public.source, "public_faces": len(public),
                     "private_faces_left_to_federation": num_private,
                     "epochs": settings.epochs, "batch_size": settings.batch_size,
                     "learning_rate": settings.learning_rate, "seed": settings.seed,
                     "command": settings.command, "history": history},
        "public_split": split.to_dict() if split else None,
        "privacy": {"dp": False, "guarantee": "none needed: only public, consented faces seen"},
    }
    if validation is not None:
        card["validation"] = evaluate(model, validation.images, validation.labels).to_dict()
    save_model(model, Path(settings.out), card)
    return card

