"""Train the temporal model on simulated expression videos and compare it with the frame model
and an exponential moving average on held-out sequences.

Usage: python -m emofl.simulations.training.train_temporal --data ../shared/data/fer2013/train
       --val-data ../shared/data/fer2013/val [--out common/weights/temporal_model.pt]

Training sequences are built from the training faces, held-out sequences from the val faces
(`expression_sequences`); both go through the same frame model (the shipped one by default).
The EMA's alpha is chosen on training sequences, never on the held-out ones. Writes the model
and its card, and `temporal_model.json` / `temporal_model.png` into `--results`.
"""

import argparse
import json
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emofl.common.data.classes import NUM_CLASSES
from emofl.common.data.datasets import load_dataset
from emofl.common.data.face_dataset import DataError
from emofl.common.model.frame_store import load_model
from emofl.common.model.model_card import model_card
from emofl.common.model.model_cards import ModelError
from emofl.common.model.smoothers import EmaSmoother, ema_sequences
from emofl.common.model.temporal import TemporalModel, TemporalSmoother
from emofl.common.model.temporal_store import SHIPPED_TEMPORAL_MODEL, save_temporal_model
from emofl.common.storage import atomic_io
from emofl.simulations.training.expression_sequences import (
    SequenceBuilder,
    SequenceSettings,
    frame_probabilities,
)
from emofl.simulations.training.temporal_plot import plot_results

EMA_ALPHAS = tuple(round(a, 2) for a in np.arange(0.05, 1.0001, 0.05))
LATENCY_PARTICIPANTS = 9
LATENCY_FRAMES = 2000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training faces (FER2013 CSV or folder)")
    parser.add_argument("--val-data", required=True, help="held-out faces for test sequences")
    parser.add_argument("--frame-model", default=None, help="frame model (default: shipped)")
    parser.add_argument("--out", type=Path, default=SHIPPED_TEMPORAL_MODEL, help="model file")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    parser.add_argument("--views", type=int, default=4, help="jittered views per face")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--val-sequences", type=int, default=200)
    parser.add_argument("--val-length", type=int, default=600, help="frames per val sequence")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the frame model")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def accuracies(predicted: np.ndarray, labels: np.ndarray, fps: float) -> dict:
    """Per-frame accuracy, mean per-class accuracy, and accuracy in the first second after an
    expression starts (where any smoothing lags behind)."""
    correct = predicted == labels
    changed = np.ones_like(labels, dtype=bool)
    changed[:, 1:] = labels[:, 1:] != labels[:, :-1]
    since = np.zeros(labels.shape, dtype=np.int64)  # frames since the expression started
    for t in range(1, labels.shape[1]):
        since[:, t] = np.where(changed[:, t], 0, since[:, t - 1] + 1)
    per_class = [float(correct[labels == c].mean()) for c in range(NUM_CLASSES)
                 if (labels == c).any()]
    return {
        "accuracy": float(correct.mean()),
        "mean_per_class_accuracy": float(np.mean(per_class)),
        "first_second_accuracy": float(correct[since < fps].mean()),
    }


@torch.no_grad()
def temporal_predictions(model: TemporalModel, probs: np.ndarray) -> np.ndarray:
    """Smoothed probabilities (S, T, 7) of whole sequences."""
    model.eval()
    return torch.softmax(model(torch.from_numpy(probs)), dim=-1).numpy()


def best_ema_alpha(probs: np.ndarray, labels: np.ndarray) -> float:
    """The alpha of EMA_ALPHAS with the highest per-frame accuracy on these sequences."""
    scores = [(ema_sequences(probs, a).argmax(-1) == labels).mean() for a in EMA_ALPHAS]
    return EMA_ALPHAS[int(np.argmax(scores))]


def train(model: TemporalModel, builder: SequenceBuilder, args: argparse.Namespace) -> list:
    """Adam with cosine decay on fresh training sequences every step; returns the loss curve."""
    rng = np.random.default_rng(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    losses = []
    model.train()
    bar = tqdm(range(args.steps), desc="temporal model", unit="step")
    for _ in bar:
        probs, labels = builder.sample(args.batch_size, rng)
        logits = model(torch.from_numpy(probs))
        loss = nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES),
                                           torch.from_numpy(labels).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    model.eval()
    return losses


def microseconds_per_participant(smoother: TemporalSmoother | EmaSmoother) -> float:
    """Streaming cost of `update_many` per participant and frame, for a 9-person meeting."""
    rng = np.random.default_rng(0)
    frames = rng.dirichlet(np.ones(NUM_CLASSES), (LATENCY_FRAMES, LATENCY_PARTICIPANTS))
    frames = frames.astype(np.float32)
    participants = list(range(LATENCY_PARTICIPANTS))
    start = time.perf_counter()
    for frame in frames:
        smoother.update_many(participants, frame)
    return (time.perf_counter() - start) / (LATENCY_FRAMES * LATENCY_PARTICIPANTS) * 1e6


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    frame_model, frame_card = load_model(args.frame_model)
    train_faces, val_faces = load_dataset(args.data), load_dataset(args.val_data)
    started = time.perf_counter()
    train_cache = frame_probabilities(frame_model, train_faces.images, args.views, args.seed, True)
    val_cache = frame_probabilities(frame_model, val_faces.images, args.views, args.seed + 1, True)
    cache_seconds = time.perf_counter() - started

    settings = SequenceSettings()
    val_settings = SequenceSettings(length=args.val_length)
    train_builder = SequenceBuilder(train_cache, train_faces.labels, settings)
    val_probs, val_labels = SequenceBuilder(val_cache, val_faces.labels, val_settings).sample(
        args.val_sequences, np.random.default_rng(args.seed + 1))
    tune_probs, tune_labels = train_builder.sample(400, np.random.default_rng(args.seed + 2))
    alpha = best_ema_alpha(tune_probs, tune_labels)

    # The LSTM's matrices are too small to split across threads; with the cores shared,
    # more threads only wait on each other.
    torch.set_num_threads(1)
    model = TemporalModel(args.hidden)
    started = time.perf_counter()
    losses = train(model, train_builder, args)
    train_seconds = time.perf_counter() - started

    fps = settings.fps
    smoothed = {
        "frame model": val_probs,
        f"EMA (alpha={alpha})": ema_sequences(val_probs, alpha),
        "temporal model": temporal_predictions(model, val_probs),
    }
    sequences = {name: accuracies(p.argmax(-1), val_labels, fps) for name, p in smoothed.items()}
    still = float((val_cache[:, 0].argmax(-1) == val_faces.labels).mean())
    results = {
        "frame_model_still_image_val_accuracy": still,
        "frame_model_jittered_view_val_accuracy":
            float((val_cache[:, 1:].argmax(-1) == val_faces.labels[:, None]).mean())
            if args.views > 1 else None,
        "val_sequences": {"count": args.val_sequences, "frames": int(val_labels.size),
                          "per_frame": sequences},
        "train_sequences_frame_accuracy": float((tune_probs.argmax(-1) == tune_labels).mean()),
        "ema_alpha": alpha,
        "microseconds_per_participant_frame": {
            "temporal model": microseconds_per_participant(TemporalSmoother(model)),
            "EMA": microseconds_per_participant(EmaSmoother(alpha)),
        },
        "frame_probability_seconds": cache_seconds,
        "training_seconds": train_seconds,
        "final_training_loss": float(np.mean(losses[-50:])),
    }
    card = build_card(args, model, frame_card, settings, val_settings,
                      {"train": len(train_faces), "val": len(val_faces)}, results)
    save_temporal_model(model, args.out, card)
    args.results.mkdir(parents=True, exist_ok=True)
    atomic_io.write_json(args.results / "temporal_model.json", card)
    plot_results(results, losses, smoothed, val_labels[0], fps,
                 args.results / "temporal_model.png")
    return results


def build_card(
    args: argparse.Namespace, model: TemporalModel, frame_card: dict,
    settings: SequenceSettings, val_settings: SequenceSettings, faces: dict, results: dict,
) -> dict:
    """The model card: what the model eats, what it was trained on, how well it did."""
    return model_card(
        name="emofl temporal model",
        parameters=sum(p.numel() for p in model.parameters()),
        input="per-frame class probabilities of one face from the frame model, in time order",
        output="logits over the same classes per frame; causal (frame t sees frames <= t)",
        frame_model={
            "path": args.frame_model or "shipped (common/weights/frame_model.pt)",
            "validation_accuracy": frame_card.get("validation", {}).get("accuracy"),
        },
        training={
            "data": args.data,
            "faces": faces["train"],
            "views_per_face": args.views,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "sequences_seen": args.steps * args.batch_size,
            "optimizer": f"Adam lr {args.lr}, cosine decay, grad-norm clip 1.0",
            "seed": args.seed,
            "sequence_settings": settings.to_dict(),
            "command": shlex.join(["python", "-m", "emofl.simulations.training.train_temporal",
                                   *sys.argv[1:]]),
            "date": date.today().isoformat(),
        },
        evaluation={
            "data": args.val_data,
            "faces": faces["val"],
            "sequence_settings": val_settings.to_dict(),
            "ema_alpha_chosen_on": "400 training sequences",
        },
        results=results,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        results = run(args)
    except (DataError, ModelError, ValueError) as err:
        sys.exit(f"train_temporal: error: {str(err).splitlines()[0]}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
