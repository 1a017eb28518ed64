"""Non-private pre-training on the public split: the server's starting point for DP fine-tuning.

A fixed, seeded fraction of a training set is treated as public, consented data held by the
server (docs/architecture.md, "What is public"). Training on it costs no client privacy; the
resulting model's card records the split so that `emofl simulate --init-model` keeps those
faces out of every client, and ε covers exactly the federated rest. With synthetic data the
server simply draws its own faces from a seed no client uses.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from emofl.common.data.datasets import load_dataset
from emofl.common.data.face_dataset import FaceDataset
from emofl.common.data.federated_data import PublicSplit, to_faces
from emofl.common.data.partition import split_public
from emofl.common.errors import UserError
from emofl.common.model.frame_store import build_model, save_model
from emofl.common.model.model_card import model_card
from emofl.common.model.training import evaluate, train_epoch
from emofl.common.protocol.choices import POOLS
from emofl.common.storage import atomic_io
from emofl.common.storage.atomic_io import DamagedFileError


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
    model_kind: str = "separable"
    model_pool: str = POOLS[0]
    label_smoothing: float = 0.0
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


class PretrainError(UserError):
    """The output exists or is a folder, or a checkpoint beside it belongs to other settings."""


# What an epoch's checkpoint holds, and what to do with one that cannot be used.
CHECKPOINT_KEYS = ("settings", "model", "optimizer", "schedule", "generator", "history")
DAMAGED_REMEDY = "remove it to start over or restore it"


def checkpoint_file(out: str | Path) -> Path:
    """Where an unfinished pre-training keeps its state after every epoch."""
    path = Path(out)
    return path.with_name(f"{path.stem}_checkpoint.pt")


def _resume_state(settings: PretrainSettings) -> dict | None:
    path = checkpoint_file(settings.out)
    if not path.exists():
        return None
    state = atomic_io.torch_load(path, DAMAGED_REMEDY)
    if (not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS)
            or not isinstance(state["settings"], dict)):
        raise DamagedFileError(f"{path} is damaged: it is not a pre-training checkpoint; "
                               f"{DAMAGED_REMEDY}")
    saved = {k: v for k, v in state["settings"].items() if k != "command"}
    wanted = {k: v for k, v in asdict(settings).items() if k != "command"}
    if saved != wanted:
        changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
        raise PretrainError(f"{path} is a checkpoint of other settings ({', '.join(changed)}); "
                            "remove it or repeat its settings")
    return state


def pretrain(settings: PretrainSettings, progress: bool = True) -> dict:
    """Train on the public faces only; save the model and its card; return the card.

    The state is checkpointed after every epoch beside `out`; a rerun with the same settings
    continues from there. A write that fails (a full disk) leaves no model file behind, only
    the last epoch's checkpoint, so the rerun resumes.
    """
    out = Path(settings.out)
    if out.is_dir():
        raise PretrainError(f"{out} is a folder; --out names the model file to write")
    if out.exists():
        raise PretrainError(f"{out} already exists; choose another --out")
    atomic_io.make_dir(out.parent)  # a file in the way is reported now, not after training
    resumed = _resume_state(settings)
    public, split, num_private = public_faces(settings)
    faces = to_faces(public)
    validation = to_faces(load_dataset(settings.val_data)) if settings.val_data else None
    torch.manual_seed(settings.seed)
    model = build_model({"width": settings.model_width, "kind": settings.model_kind,
                         "pool": settings.model_pool})
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(TensorDataset(faces.images, faces.labels), batch_size=settings.batch_size,
                        shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * len(loader))
    history: list[dict] = []
    if resumed is not None:
        history = _restore(resumed, model, optimizer, schedule, generator, settings)
    for epoch in tqdm(range(len(history), settings.epochs), desc="public pre-training",
                      unit="epoch", initial=len(history), total=settings.epochs,
                      disable=not progress):
        loss = train_epoch(model, loader, optimizer, generator, schedule,
                           label_smoothing=settings.label_smoothing)
        entry = {"epoch": epoch + 1, "train_loss": loss}
        if validation is not None:
            entry["val_accuracy"] = evaluate(model, validation.images, validation.labels).accuracy
        history.append(entry)
        atomic_io.torch_save(checkpoint_file(settings.out), {
            "settings": asdict(settings), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "generator": generator.get_state(), "history": history})
    card = model_card(
        name="emofl frame model (public pre-training)",
        training={"method": "non-private central training on the public split",
                  "data": public.source, "public_faces": len(public),
                  "private_faces_left_to_federation": num_private,
                  "epochs": settings.epochs, "batch_size": settings.batch_size,
                  "learning_rate": settings.learning_rate,
                  "weight_decay": settings.weight_decay,
                  "label_smoothing": settings.label_smoothing, "seed": settings.seed,
                  "command": settings.command, "history": history},
        privacy={"dp": False, "guarantee": "none needed: only public, consented faces seen"},
        public_split=split.to_dict() if split else None,
        validation=(evaluate(model, validation.images, validation.labels).to_dict()
                    if validation is not None else None),
    )
    try:
        save_model(model, out, card)
    except BaseException:
        out.unlink(missing_ok=True)  # weights without their card are no model; a rerun resumes
        raise
    checkpoint_file(out).unlink(missing_ok=True)
    return card


def _restore(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             schedule: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator,
             settings: PretrainSettings) -> list[dict]:
    """Put an epoch's checkpoint back into the training objects; the epochs' history so far."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        return list(state["history"])
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError):
        raise DamagedFileError(f"{checkpoint_file(settings.out)} is damaged: it does not fit "
                               f"this model and optimizer; {DAMAGED_REMEDY}") from None
