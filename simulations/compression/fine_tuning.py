"""The checkpointed optimisation both compressions share: AdamW with a one-cycle schedule over
the public faces, the model's val accuracy after every epoch, and the state saved after every
epoch so that a stopped run resumes where it was.

What one epoch does is the caller's (`training.train_epoch` for a pruned model,
`distillation.distill_epoch` for a student); so is the model, which must be built the same way
on a resumed run (pruning and fresh initialisation are both deterministic from their seed).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from emofl.common.data.federated_data import Faces
from emofl.common.model.training import evaluate
from emofl.common.storage import atomic_io

EpochStep = Callable[[DataLoader, torch.optim.Optimizer, torch.Generator,
                      torch.optim.lr_scheduler.LRScheduler], float]


@dataclass(frozen=True)
class FineTuneSettings:
    """Optimiser and schedule of one run; `seed` fixes shuffling and augmentation."""

    epochs: int
    learning_rate: float
    batch_size: int = 128
    weight_decay: float = 5e-4
    seed: int = 0


def fine_tune(model: torch.nn.Module, step: EpochStep, *, public: Faces, validation: Faces,
              settings: FineTuneSettings, checkpoint: Path) -> list[dict]:
    """Train `model` in place for `settings.epochs` epochs of `step`; the per-epoch history
    (train loss, val accuracy). Resumes from `checkpoint` when it holds the same settings."""
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(TensorDataset(public.images, public.labels),
                        batch_size=settings.batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * len(loader))
    history: list[dict] = []
    if checkpoint.exists():
        state = atomic_io.torch_load(checkpoint, "remove it to start over")
        if state["settings"] != asdict(settings):
            raise ValueError(f"{checkpoint} holds another run's settings; remove it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        history = state["history"]
    for epoch in range(len(history), settings.epochs):
        loss = step(loader, optimizer, generator, schedule)
        accuracy = evaluate(model, validation.images, validation.labels).accuracy
        history.append({"epoch": epoch + 1, "train_loss": loss, "val_accuracy": accuracy})
        print(f"epoch {epoch + 1}: loss {loss:.4f}, val accuracy {accuracy:.4f}", flush=True)
        atomic_io.torch_save(checkpoint, {
            "settings": asdict(settings), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "generator": generator.get_state(), "history": history})
    return history
