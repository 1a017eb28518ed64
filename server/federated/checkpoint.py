"""The server's per-round checkpoint: global model, round, every client's accountant, metrics.

Written atomically after every round to RUN_DIR/checkpoint.pt, so an interrupted run loses
at most the round in progress and resumes from the last completed one.
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch

from emofl.common.storage import atomic_io
from emofl.common.storage.atomic_io import DamagedFileError

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class Checkpoint:
    """State after `round` completed rounds; `rounds` is the metrics.json round list so far and
    `initial` the evaluation of the starting model; `notes` what a resume found and did;
    `server_momentum` FedAvgM's momentum vector in plain mode (empty before it exists; in CKKS
    mode the momentum is inside model_state's ciphertexts)."""

    round: int
    model_state: dict[str, torch.Tensor]
    ledgers: dict[int, dict] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    initial: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    server_momentum: list[torch.Tensor] = field(default_factory=list)


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
        "server_momentum": checkpoint.server_momentum,
    })


# What to do with a checkpoint that cannot be used: its ledgers say what the devices spent.
DAMAGED_REMEDY = "restore it from a copy, or start the run over with another --out"
# Each saved field and the type it must have; the optional ones are absent in older runs.
FIELD_TYPES = {"round": int, "model_state": dict, "ledgers": dict, "rounds": list,
               "initial": dict, "settings": dict, "notes": list, "server_momentum": list}
OPTIONAL_FIELDS = ("initial", "notes", "server_momentum")


def load_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    """The last checkpoint in `run_dir`, or None when the run has not completed a round;
    DamagedFileError (one line naming the file) when it is truncated, not a torch file, or
    does not hold a run's state."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None
    data = atomic_io.torch_load(path, DAMAGED_REMEDY)
    if problem := _content_problem(data):
        raise DamagedFileError(f"{path} is damaged: {problem}; {DAMAGED_REMEDY}")
    return Checkpoint(
        round=data["round"],
        model_state=data["model_state"],
        ledgers={int(k): v for k, v in data["ledgers"].items()},
        rounds=list(data["rounds"]),
        initial=dict(data.get("initial", {})),
        settings=dict(data["settings"]),
        notes=list(data.get("notes", [])),
        server_momentum=list(data.get("server_momentum", [])),
    )


def _content_problem(data: object) -> str:
    """Why `data` is not what `save_checkpoint` writes, or "" when it is."""
    if not isinstance(data, dict):
        return f"it holds a {type(data).__name__}, not a run's state"
    for name, kind in FIELD_TYPES.items():
        if name not in data:
            if name not in OPTIONAL_FIELDS:
                return f"it has no {name!r}"
        elif not isinstance(data[name], kind) or isinstance(data[name], bool):
            return f"its {name!r} is a {type(data[name]).__name__}, not a {kind.__name__}"
    if data["round"] < 0:
        return f"its round is {data['round']}"
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor)
               for k, v in data["model_state"].items()):
        return "its model_state is not a state_dict of tensors"
    if not all(isinstance(v, torch.Tensor) for v in data.get("server_momentum", [])):
        return "its server_momentum is not a list of tensors"
    if not all(str(k).isdigit() and isinstance(v, dict) for k, v in data["ledgers"].items()):
        return "its ledgers are not ledger states by client id"
    return ""
