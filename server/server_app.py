"""The coordinator of a federated run, as a Flower ServerApp (message API).

It runs `PrivacyFedAvg` for the planned rounds; after each round it evaluates the global
model on the held-out set, writes metrics.json and an atomic checkpoint (model, round, every
client's accountant state, metrics), and at the end the final model with its card. With
`resume` it continues from the run directory's checkpoint.
"""

import time
from collections.abc import Callable
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from emofl.common import atomic_io
from emofl.common.federated_data import public_split_of, validation_faces
from emofl.common.model import EmotionNet
from emofl.common.model_store import architecture_of, build_model, load_model, save_model
from emofl.common.run_settings import RunSettings
from emofl.common.training import evaluate

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .model_card import build_model_card
from .privacy_fedavg import PrivacyFedAvg

RoundCallback = Callable[[dict], None]


def initial_model(settings: RunSettings) -> EmotionNet:
    """The starting point: the init model when given, else a seeded random one."""
    if settings.init_model:
        return load_model(settings.init_model)[0]
    torch.manual_seed(settings.seed)
    return build_model({"width": settings.model_width})


class RoundRecorder:
    """Flower's `evaluate_fn`, called after every round: evaluate, record, checkpoint."""

    def __init__(self, settings: RunSettings, model: EmotionNet, strategy: PrivacyFedAvg,
                 rounds: list[dict], initial: dict, on_round: RoundCallback | None) -> None:
        self.settings, self.model, self.strategy = settings, model, strategy
        self.rounds, self.initial = rounds, initial
        self.on_round = on_round
        self.validation = validation_faces(settings)
        self.last_evaluation = None
        self.round_started = time.perf_counter()

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        self.model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate(self.model, self.validation.images, self.validation.labels)
        self.last_evaluation = result
        if server_round > 0:
            self._record(self.strategy.round_offset + server_round, result)
        elif not self.initial:
            self.initial.update(accuracy=result.accuracy, loss=result.loss)
        self.round_started = time.perf_counter()
        return MetricRecord({"accuracy": result.accuracy, "loss": result.loss})

    def _record(self, global_round: int, result) -> None:
        entry = {
            "round": global_round,
            "accuracy": result.accuracy,
            "loss": result.loss,
            "wall_seconds": time.perf_counter() - self.round_started,
            "clients": self.strategy.last_reports,
        }
        self.rounds.append(entry)
        out = Path(self.settings.out)
        save_checkpoint(out, Checkpoint(
            round=global_round,
            model_state={k: v.clone() for k, v in self.model.state_dict().items()},
            ledgers=dict(self.strategy.ledgers),
            rounds=self.rounds,
            initial=self.initial,
            settings=self.settings.to_config(),
        ))
        atomic_io.write_json(out / "metrics.json", {"initial": self.initial, "rounds": self.rounds})
        if self.on_round:
            self.on_round(entry)


def run_federation(grid: Grid, settings: RunSettings,
                   on_round: RoundCallback | None = None) -> None:
    """Run (or resume) the planned rounds on `grid` and write the run directory."""
    model = initial_model(settings)
    checkpoint = load_checkpoint(settings.out) if settings.resume else None
    done, rounds, ledgers, initial = 0, [], {}, {}
    if checkpoint:
        model.load_state_dict(checkpoint.model_state)
        done, rounds, ledgers = checkpoint.round, checkpoint.rounds, checkpoint.ledgers
        initial = checkpoint.initial
    strategy = PrivacyFedAvg(
        round_offset=done, ledgers=ledgers, fraction_train=1.0, fraction_evaluate=0.0,
        min_train_nodes=settings.num_clients, min_available_nodes=settings.num_clients,
    )
    recorder = RoundRecorder(settings, model, strategy, rounds, initial, on_round)
    arch = architecture_of(model)
    train_config = ConfigRecord({"model-width": arch["width"], "feature-dim": arch["feature_dim"]})
    strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()),
                   num_rounds=max(0, settings.rounds - done), train_config=train_config,
                   evaluate_config=ConfigRecord(dict(train_config)), evaluate_fn=recorder)
    if settings.rounds - done <= 0:
        recorder(0, ArrayRecord(model.state_dict()))
    split = public_split_of(settings)
    card = build_model_card(settings, rounds, strategy.ledgers, recorder.last_evaluation,
                            split.to_dict() if split else None)
    save_model(model, Path(settings.out) / "model.pt", card)


def build_server_app(overrides: dict | None = None,
                     on_round: RoundCallback | None = None) -> ServerApp:
    """A ServerApp whose settings are the run config updated with `overrides`."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        settings = RunSettings.from_config({**context.run_config, **(overrides or {})})
        run_federation(grid, settings, on_round)

    return app


app = build_server_app()
