"""DP-SGD step time against a non-private step, side by side in one process.

Usage: python -m emofl.simulations.benchmarks.dp_step [--width 24] [--batch 128] [--repeats 15]
Each step is forward + backward + optimizer step on a batch of random 48x48 faces with one
torch thread (what a simulated client gets); medians over the repeats, interleaved so that
machine noise hits both alike.
"""

import argparse
import json
import statistics
import time
import warnings

import torch
from opacus import PrivacyEngine

from emofl.client.federated.dp_training import set_trainable
from emofl.common.model.emotion_net import EmotionNet


def _step_fn(model, optimizer, images, labels):
    def step() -> float:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        return time.perf_counter() - started

    return step


def _private(width: int, trainable: str, images, labels):
    model = EmotionNet(width=width)
    set_trainable(model, trainable)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=len(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        private, optimizer, _ = PrivacyEngine().make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
            max_grad_norm=1.0, poisson_sampling=False)
    return _step_fn(private, optimizer, images, labels)


def measure(width: int, batch: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images, labels = torch.randn(batch, 1, 48, 48), torch.randint(0, 7, (batch,))
    plain_model = EmotionNet(width=width)
    steps = {
        "non_private_all": _step_fn(plain_model, torch.optim.Adam(plain_model.parameters()),
                                    images, labels),
        "dp_sgd_all": _private(width, "all", images, labels),
        "dp_sgd_top": _private(width, "top", images, labels),
    }
    for step in steps.values():  # warm-up
        step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "width": width, "batch": batch, "repeats": repeats, "threads": 1,
        "median_step_seconds": medians,
        "dp_all_over_non_private": medians["dp_sgd_all"] / medians["non_private_all"],
        "dp_top_over_non_private": medians["dp_sgd_top"] / medians["non_private_all"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(measure(args.width, args.batch, args.repeats), indent=2))


if __name__ == "__main__":
    main()
