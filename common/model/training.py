"""The local training loop and evaluation shared by clients, the server and pre-training."""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emofl.common.data.augmentation import augment_batch
from emofl.common.data.classes import CLASSES


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy and per-class accuracy of a model on a labelled set of n faces."""

    loss: float
    accuracy: float
    per_class_accuracy: dict[str, float | None]
    n: int

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class_accuracy": self.per_class_accuracy,
            "n": self.n,
        }


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    label_smoothing: float = 0.0,
) -> float:
    """One pass over `batches` (augmented when a generator is given); returns the mean loss.

    A `scheduler`, when given, advances after every optimizer step.
    """
    model.train()
    total, count = 0.0, 0
    for images, labels in batches:
        if len(labels) == 0:  # Poisson sampling can draw an empty batch; it still is a step
            optimizer.zero_grad(set_to_none=True)
            optimizer.step()
            continue
        if generator is not None:
            images = augment_batch(images, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(images), labels,
                                           label_smoothing=label_smoothing)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / max(count, 1)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits for preprocessed faces (N, 1, 48, 48), in eval mode."""
    model.eval()
    chunks = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, len(CLASSES))


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> Evaluation:
    """Cross-entropy, accuracy and per-class accuracy (None for classes absent from the set)."""
    logits = predict_logits(model, images)
    loss = float(nn.functional.cross_entropy(logits, labels)) if len(labels) else float("nan")
    predicted = logits.argmax(1).numpy()
    truth = labels.numpy()
    per_class = {}
    for index, name in enumerate(CLASSES):
        mask = truth == index
        per_class[name] = float(np.mean(predicted[mask] == index)) if mask.any() else None
    accuracy = float(np.mean(predicted == truth)) if len(truth) else float("nan")
    return Evaluation(loss=loss, accuracy=accuracy, per_class_accuracy=per_class, n=len(truth))
