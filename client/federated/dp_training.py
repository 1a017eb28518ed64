"""Local training on one device: Opacus DP-SGD whose privacy history spans every round.

Unlike Flower's Opacus example, which builds a new accountant each round and so reports only
that round's ε, the client keeps a `PrivacyLedger` of every DP-SGD event it has ever run; the
ε it reports is for the whole history, and it refuses a round that would exceed its budget.
A round's plan is the `DpEvent` it would spend, so the budget check asks the ledger about
exactly the event the round then runs.

Each step draws a Poisson sample of the device's faces at rate q (a logical batch of q·n faces
in expectation, possibly thousands), which Opacus' DPOptimizer accumulates over physical chunks
of at most `MAX_PHYSICAL_BATCH` inputs before clipping, noising and stepping (as its
BatchMemoryManager does). With augmentation multiplicity K (De et al. 2022) every sampled face
is seen in K random augmentations whose gradients are averaged before clipping, so it still
contributes one clipped gradient. The device's optimizer is plain SGD on the privatised
gradient by default; the server's optimizer (momentum) acts on the averaged update.
"""

import copy
import math
import secrets
from dataclasses import dataclass

import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn

from emofl.common.data.augmentation import augment_batch
from emofl.common.data.federated_data import Faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.privacy.budget import noise_for_budget
from emofl.common.privacy.events import DpEvent
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.protocol.choices import TRAINABLE
from emofl.common.protocol.run_settings import RunSettings


@dataclass
class LocalUpdate:
    """The outcome of one round on a device: the new weights, or the reason it refused."""

    state_dict: dict[str, torch.Tensor] | None
    num_examples: int
    train_loss: float
    plan: DpEvent | None
    refused: str = ""


def plan_round(settings: RunSettings, num_examples: int) -> DpEvent:
    """The event one round will spend, σ chosen so `settings.rounds` rounds spend exactly ε.

    q is the settings' sample rate, or else 1 / ⌈n / B⌉ for the expected batch size B; a round
    is `local_steps` steps, or else `local_epochs` passes of ⌈1/q⌉ steps. Without DP, σ is 0
    and the event only gives the round's q and steps: nothing is spent.
    """
    batches = max(1, math.ceil(num_examples / settings.batch_size))
    sample_rate = settings.sample_rate or 1.0 / batches
    steps = settings.local_steps or settings.local_epochs * math.ceil(1 / sample_rate)
    if not settings.dp:
        return DpEvent(0.0, sample_rate, steps)
    sigma = settings.noise_multiplier or noise_for_budget(
        settings.epsilon, settings.delta, sample_rate, steps * settings.rounds, settings.accountant
    )
    return DpEvent(sigma, sample_rate, steps)


def set_trainable(model: EmotionNet, trainable: str) -> None:
    """Freeze all but the chosen part: everything, the top (last block onward), the projection
    and the head, or the head."""
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    model.requires_grad_(trainable == "all")
    if trainable == "top":
        for layer in model.backbone.top():
            layer.requires_grad_(True)
    if trainable == "projection":
        model.backbone.projection.requires_grad_(True)
    model.head.requires_grad_(True)


def train_round(
    model: EmotionNet,
    faces: Faces,
    settings: RunSettings,
    ledger: PrivacyLedger,
    seed: int | None = None,
) -> LocalUpdate:
    """Train a copy of `model` for one round; record the spent steps in `ledger`.

    A copy, because Opacus attaches hooks to the module it makes private, once only.
    `seed` drives batch sampling, augmentation, dropout and DP noise; leave it None on a real
    device: then it is drawn from the OS's entropy pool, because DP-SGD's guarantee needs
    the server not to know which faces were sampled nor what noise was added.
    """
    n = len(faces)
    plan = plan_round(settings, n)
    if settings.dp:
        after = ledger.epsilon(settings.delta, [plan])
        if after > settings.epsilon + 1e-9:
            spent = ledger.epsilon(settings.delta)
            reason = (f"budget exhausted: spent ε={spent:.3f}, this round would reach "
                      f"ε={after:.3f} > {settings.epsilon} (δ={settings.delta})")
            return LocalUpdate(None, n, float("nan"), plan, refused=reason)
    seed = secrets.randbits(62) if seed is None else seed
    model = copy.deepcopy(model).train()
    set_trainable(model, settings.trainable)
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _client_optimizer(settings, params)
    module: nn.Module = model
    if settings.dp:
        module = GradSampleModule(model, loss_reduction="sum")
        optimizer = DPOptimizer(
            optimizer, noise_multiplier=plan.noise_multiplier,
            max_grad_norm=settings.max_grad_norm,
            expected_batch_size=max(1, round(plan.sample_rate * n)), loss_reduction="mean",
            generator=torch.Generator().manual_seed(seed + 1))
    # Dropout draws from torch's global stream: fork it, so that it follows `seed` too.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        losses = [_logical_step(module, optimizer, faces, plan.sample_rate,
                                settings.augment_multiplicity, generator, settings.dp)
                  for _ in range(plan.steps)]
    if settings.dp:
        ledger.record(plan)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return LocalUpdate(state, n, float(sum(losses) / len(losses)), plan)


MAX_PHYSICAL_BATCH = 128  # inputs per forward/backward pass, augmentation copies included


def _client_optimizer(settings: RunSettings, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if settings.client_optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.learning_rate)
    return torch.optim.SGD(params, lr=settings.learning_rate)


def _logical_step(module: nn.Module, optimizer: torch.optim.Optimizer, faces: Faces,
                  sample_rate: float, multiplicity: int, generator: torch.Generator,
                  private: bool) -> float:
    """One optimizer step on a Poisson sample of `faces`; returns its mean training loss.

    Under DP the chunks' per-sample gradients go to the DPOptimizer, which clips and sums them
    and adds noise once, at the last chunk (an empty sample still gets its noise). Without DP
    the chunks' gradients add up to the mean over the sample.
    """
    chosen = torch.nonzero(torch.rand(len(faces), generator=generator) < sample_rate).flatten()
    chunks = chosen.split(max(1, MAX_PHYSICAL_BATCH // multiplicity)) if len(chosen) else [chosen]
    total = 0.0
    for index, chunk in enumerate(chunks):
        if private:
            optimizer.signal_skip_step(do_skip=index < len(chunks) - 1)
        images = faces.images[chunk].repeat(multiplicity, 1, 1, 1)
        if len(chunk):
            images = augment_batch(images, generator)
        labels = faces.labels[chunk].repeat(multiplicity)
        losses = nn.functional.cross_entropy(module(images), labels, reduction="none")
        # Under DP each copy's own gradient (Opacus averages copies, then clips, sums, adds
        # noise and divides by the expected batch); without DP the mean over the sample.
        loss = losses.sum() if private else losses.sum() / (multiplicity * max(1, len(chosen)))
        loss.backward()
        if private:
            _average_copies(optimizer, multiplicity)
        total += float(losses.detach().sum()) / multiplicity
        if private or index == len(chunks) - 1:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return total / max(1, len(chosen))


def _average_copies(optimizer: DPOptimizer, multiplicity: int) -> None:
    """Replace each face's K per-copy gradients by their mean, so it is clipped once."""
    if multiplicity == 1:
        return
    for param in optimizer.params:
        sample = param.grad_sample
        param.grad_sample = sample.view(multiplicity, -1, *sample.shape[1:]).mean(0)
