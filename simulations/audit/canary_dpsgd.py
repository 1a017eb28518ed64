"""One simulated client's Opacus DP-SGD with canary gradients, scored for a one-run audit.

m canaries are Dirac gradients: canary i is `CANARY_SCALE`·C at its own coordinate of the
flattened parameters, so a correct clipping step cuts it to norm C. Each canary is included in
the client's data with probability ½ and, when included, Poisson-sampled at rate q at every
step like any face. `CanaryDPOptimizer` (Opacus' DPOptimizer) appends the sampled canaries'
rows to the per-sample gradients before clipping, so clipping, noise and scaling are Opacus'
own. After each step it scores every canary by the privatised sum at its coordinate minus the
faces' clipped sum there (white-box: under DP the other examples may be known): what is left is
the canary's own clipped contribution and the noise, summed over all steps.
"""

from dataclasses import dataclass

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn

from emofl.common.data.federated_data import Faces

CANARY_SCALE = 10.0  # canaries larger than C: clipping must cut them to C


class CanaryDPOptimizer(DPOptimizer):
    """A DPOptimizer that inserts canary per-sample gradients and scores every canary."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, coordinates: torch.Tensor,
                 included: torch.Tensor, sample_rate: float, generator: torch.Generator,
                 **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        self.coordinates, self.included = coordinates, included
        self.sample_rate, self.sampler = sample_rate, generator
        self.scores = torch.zeros(len(coordinates), dtype=torch.float64)
        sizes = [p.numel() for p in self.params]
        self.offsets = torch.tensor([0, *np.cumsum(sizes)[:-1]])

    def _flat_samples(self) -> torch.Tensor:
        return torch.cat([g.reshape(len(g), -1) for g in self.grad_samples], dim=1)

    def _data_sum_at_canaries(self) -> torch.Tensor:
        """The faces' per-sample gradients clipped as Opacus clips them, summed, at each
        canary's coordinate."""
        flat = self._flat_samples()
        factor = (self.max_grad_norm / (flat.norm(dim=1) + 1e-6)).clamp(max=1.0)
        return (factor[:, None] * flat[:, self.coordinates]).sum(0).double()

    def _insert(self, chosen: torch.Tensor) -> None:
        rows = torch.zeros(len(chosen), sum(p.numel() for p in self.params))
        rows[torch.arange(len(chosen)), self.coordinates[chosen]] = (
            CANARY_SCALE * self.max_grad_norm)
        for param, start in zip(self.params, self.offsets.tolist(), strict=True):
            block = rows[:, start:start + param.numel()].reshape(len(chosen), *param.shape)
            param.grad_sample = torch.cat([param.grad_sample, block])

    def pre_step(self, closure=None) -> bool:
        data_sum = self._data_sum_at_canaries()
        draws = torch.rand(len(self.coordinates), generator=self.sampler) < self.sample_rate
        self._insert(torch.nonzero(draws & self.included).flatten())
        proceed = super().pre_step(closure)
        if proceed:
            flat = torch.cat([p.grad.reshape(-1) for p in self.params])
            privatised_sum = flat[self.coordinates].double() * self.expected_batch_size
            self.scores += privatised_sum - data_sum
        return proceed


@dataclass(frozen=True)
class CanaryRun:
    """A canary run's scores, which canaries were included, and the DP-SGD that ran."""

    scores: np.ndarray
    included: np.ndarray
    noise_multiplier: float
    sample_rate: float
    steps: int


def run_with_canaries(model: nn.Module, faces: Faces, *, canaries: int, noise_multiplier: float,
                      sample_rate: float, steps: int, max_grad_norm: float = 1.0,
                      learning_rate: float = 0.05, seed: int = 0) -> CanaryRun:
    """Train `model` with Opacus DP-SGD for `steps` Poisson-sampled steps, canaries inserted.

    Args:
        canaries: m, at most the number of parameters (each has its own coordinate).
        noise_multiplier: σ; 0 switches the noise off (a broken run the audit must catch).
    Returns:
        the canaries' scores and inclusions.
    """
    generator = torch.Generator().manual_seed(seed)
    size = sum(p.numel() for p in model.parameters())
    if canaries > size:
        raise ValueError(f"{canaries} canaries need as many parameters; the model has {size}")
    module = GradSampleModule(model, loss_reduction="sum")
    optimizer = CanaryDPOptimizer(
        torch.optim.SGD(model.parameters(), lr=learning_rate),
        coordinates=torch.randperm(size, generator=generator)[:canaries],
        included=torch.rand(canaries, generator=generator) < 0.5, sample_rate=sample_rate,
        generator=generator, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
        expected_batch_size=max(1, round(sample_rate * len(faces))), loss_reduction="mean")
    for _ in range(steps):
        chosen = torch.nonzero(torch.rand(len(faces), generator=generator) < sample_rate)
        chosen = chosen.flatten()
        loss = nn.functional.cross_entropy(module(faces.images[chosen]), faces.labels[chosen],
                                           reduction="sum")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    scores = optimizer.scores.numpy()
    if not np.all(np.isfinite(scores)):
        raise ValueError("canary scores are not finite")
    return CanaryRun(scores, optimizer.included.numpy(), noise_multiplier, sample_rate,
                     steps)

