"""Local training on one device: Opacus DP-SGD whose privacy history spans every round.

Unlike Flower's Opacus example, which builds a new accountant each round and so reports only
that round's ε, the client keeps a `PrivacyLedger` of every DP-SGD event it has ever run; the
ε it reports is for the whole history, and it refuses a round that would exceed its budget.
A round's plan is the `DpEvent` it would spend, so the budget check asks the ledger about
exactly the event the round then runs.
"""

import copy
import math
import secrets
import warnings
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from emofl.common.data.federated_data import Faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.training import train_epoch
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

    q and the steps per epoch are those Opacus' Poisson loader uses: q = 1 / ⌈n / B⌉.
    Without DP, σ is 0 and the event only gives the round's q and steps: nothing is spent.
    """
    batches_per_epoch = max(1, math.ceil(num_examples / settings.batch_size))
    sample_rate = 1.0 / batches_per_epoch
    steps = settings.local_epochs * batches_per_epoch
    if not settings.dp:
        return DpEvent(0.0, sample_rate, steps)
    sigma = settings.noise_multiplier or noise_for_budget(
        settings.epsilon, settings.delta, sample_rate, steps * settings.rounds, settings.accountant
    )
    return DpEvent(sigma, sample_rate, steps)


def set_trainable(model: EmotionNet, trainable: str) -> None:
    """Freeze all but the chosen part: everything, the top (last block onward), or the head."""
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    model.requires_grad_(trainable == "all")
    if trainable == "top":
        for layer in model.backbone.top():
            layer.requires_grad_(True)
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
    `seed` drives batch sampling, augmentation and DP noise; leave it None on a real
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
    loader = DataLoader(TensorDataset(faces.images, faces.labels), batch_size=settings.batch_size,
                        shuffle=True, generator=generator)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    if settings.dp:
        engine = PrivacyEngine(accountant=settings.accountant)
        with warnings.catch_warnings():  # Opacus warns about secure RNG; simulation is not that
            warnings.simplefilter("ignore")
            private_model, optimizer, loader = engine.make_private(
                module=model, optimizer=optimizer, data_loader=loader,
                noise_multiplier=plan.noise_multiplier, max_grad_norm=settings.max_grad_norm,
                poisson_sampling=True, noise_generator=torch.Generator().manual_seed(seed + 1),
            )
    else:
        private_model = model
    losses = [train_epoch(private_model, loader, optimizer, generator)
              for _ in range(settings.local_epochs)]
    if settings.dp:
        for sigma, q, steps in engine.accountant.history:  # what Opacus actually ran
            ledger.record(DpEvent(sigma, q, steps))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return LocalUpdate(state, n, float(sum(losses) / len(losses)), plan)
