"""Knowledge distillation (Hinton et al., 2015): the student learns the teacher's softened
class distribution as well as the labels.

Loss = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y), with s and t the student's
and teacher's logits, T the temperature and KL averaged over the batch; T² keeps the soft
term's gradients on the scale of the hard one's as T grows. The teacher stays in eval mode
(dropout off) and sees exactly the augmented batch the student sees.
"""

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from emofl.common.data.augmentation import augment_batch


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, *, temperature: float, alpha: float) -> torch.Tensor:
    """α·T²·KL(teacher_T ‖ student_T) (batch mean) + (1 − α)·cross-entropy with `labels`."""
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                  F.log_softmax(teacher_logits / temperature, dim=1),
                  reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * kl + (1 - alpha) * hard


def distill_epoch(student: nn.Module, teacher: nn.Module,
                  batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                  optimizer: torch.optim.Optimizer, generator: torch.Generator,
                  scheduler: torch.optim.lr_scheduler.LRScheduler, *,
                  temperature: float, alpha: float) -> float:
    """One augmented pass of the student over `batches` against the frozen teacher; the mean
    loss. The scheduler advances after every step, as in `training.train_epoch`."""
    student.train()
    teacher.eval()
    total, count = 0.0, 0
    for images, labels in batches:
        images = augment_batch(images, generator)
        with torch.no_grad():
            targets = teacher(images)
        optimizer.zero_grad(set_to_none=True)
        loss = distillation_loss(student(images), targets, labels, temperature=temperature,
                                 alpha=alpha)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / max(count, 1)
