"""The server's per-round checkpoint: global model, round, every client's accountant, metrics.

Written atomically after every round to RUN_DIR/checkpoint.pt, so an interrupted run loses
at most the round in progress and resumes from the last completed one.
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch

from emofl.common.storage import atomic_io

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class Checkpoint:
    """State after `round` completed rounds; `rounds` is the metrics.json round list so far and
    `initial` the evaluation of the starting model; `notes` what a resume found and did."""

    round: int
    model_state: dict[str, torch.Tensor]
    ledgers: dict[int, dict] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    initial: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def save_checkpoint(run_dir: str | Path, checkpoint: Checkpoint) -> None:
    atomic_io.torch_save(checkpoint_path(run_dir), {
        "round": checkpoint.round,
        "model_state": checkpoint.model_state,
        "ledgers": {str(k): v for k, v in checkpoint.ledgers.items()},
        "rounds": checkpoint.rounds,
        "initial": checkpoint.initial,
        "settings": checkpoint.settings,
        "notes": checkpoint.notes,
    })


def load_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The last checkpoint in `run_dir`, or None when the run has not completed a round."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None
    data = torch.load(path, map_location="cpu", weights_only=True)
    return Checkpoint(
        round=int(data["round"]),
        model_state=data["model_state"],
        ledgers={int(k): v for k, v in data["ledgers"].items()},
        rounds=list(data["rounds"]),
        initial=dict(data.get("initial", {})),
        settings=dict(data["settings"]),
        notes=list(data.get("notes", [])),
    )
