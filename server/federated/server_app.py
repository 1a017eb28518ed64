"""The coordinator of a federated run, as a Flower ServerApp (message API).

It runs `PrivacyFedAvg` (or `CkksFedAvg` with secure aggregation) for the planned rounds.
After each round it records the global model's held-out accuracy — evaluated here in plain
mode, by one client in CKKS mode, where the server cannot read the model — writes
metrics.json and an atomic checkpoint (global model or its ciphertexts, round, every client's
accountant state, metrics), and in plain mode finally the model with its card. With `resume`
it continues from the run directory's checkpoint.
"""

import time
from collections.abc import Callable
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from emofl.common.crypto.ckks import flatten_state
from emofl.common.data.federated_data import public_split_of, validation_faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import architecture_of, build_model, load_model, save_model
from emofl.common.model.training import Evaluation, evaluate
from emofl.common.protocol.run_settings import RunSettings
from emofl.common.storage import atomic_io
from emofl.server.federated.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from emofl.server.federated.ckks_fedavg import CkksFedAvg
from emofl.server.federated.keys import load_server_keys
from emofl.server.federated.model_card import build_model_card
from emofl.server.federated.privacy_fedavg import PrivacyFedAvg

RoundCallback = Callable[[dict], None]


def initial_model(settings: RunSettings) -> EmotionNet:
    """The starting point: the init model when given, else a seeded random one."""
    if settings.init_model:
        return load_model(settings.init_model)[0]
    torch.manual_seed(settings.seed)
    return build_model({"width": settings.model_width})


def make_strategy(settings: RunSettings, model: EmotionNet, round_offset: int,
                  ledgers: dict[int, dict]) -> PrivacyFedAvg:
    """Plain or CKKS FedAvg over all clients; CKKS mode asks one client to evaluate."""
    common = dict(round_offset=round_offset, ledgers=ledgers, fraction_train=1.0,
                  min_train_nodes=settings.num_clients,
                  min_available_nodes=settings.num_clients)
    if settings.encrypted:
        length = len(flatten_state(model.state_dict())[0])
        return CkksFedAvg(keys=load_server_keys(settings.key_dir), expected_length=length,
                          fraction_evaluate=1e-9, min_evaluate_nodes=1, **common)
    return PrivacyFedAvg(fraction_evaluate=0.0, **common)


class RoundRecorder:
    """Flower's `evaluate_fn`, called after every round: evaluate, record, checkpoint."""

    def __init__(self, settings: RunSettings, model: EmotionNet, strategy: PrivacyFedAvg,
                 history: Checkpoint, on_round: RoundCallback | None) -> None:
        self.settings, self.model, self.strategy = settings, model, strategy
        self.history = history
        self.on_round = on_round
        self.encrypted = settings.encrypted
        self.validation = None if self.encrypted else validation_faces(settings)
        self.last_evaluation: Evaluation | None = None
        self.round_started = time.perf_counter()

    def _evaluate(self, arrays: ArrayRecord) -> dict:
        if self.encrypted:  # the server cannot read the model: a client evaluated it
            metrics = self.strategy.last_evaluation or {}
            return {"accuracy": float(metrics.get("accuracy", float("nan"))),
                    "loss": float(metrics.get("loss", float("nan")))}
        self.model.load_state_dict(arrays.to_torch_state_dict())
        self.last_evaluation = evaluate(self.model, self.validation.images,
                                        self.validation.labels)
        return {"accuracy": self.last_evaluation.accuracy, "loss": self.last_evaluation.loss}

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            if not self.history.initial and not self.encrypted:
                self.history.initial.update(self._evaluate(arrays))
            self.round_started = time.perf_counter()
            return None
        result = self._evaluate(arrays)
        entry = {"round": self.strategy.round_offset + server_round, **result,
                 "wall_seconds": time.perf_counter() - self.round_started,
                 "clients": self.strategy.last_reports}
        self.history.rounds.append(entry)
        self.history.round = entry["round"]
        self.history.model_state = {k: v.clone() for k, v in arrays.to_torch_state_dict().items()}
        self.history.ledgers = dict(self.strategy.ledgers)
        out = Path(self.settings.out)
        save_checkpoint(out, self.history)
        atomic_io.write_json(out / "metrics.json",
                             {"initial": self.history.initial, "rounds": self.history.rounds})
        if self.on_round:
            self.on_round(entry)
        self.round_started = time.perf_counter()
        return MetricRecord(result)


def run_federation(grid: Grid, settings: RunSettings,
                   on_round: RoundCallback | None = None) -> None:
    """Run (or resume) the planned rounds on `grid` and write the run directory."""
    model = initial_model(settings)
    history = load_checkpoint(settings.out) if settings.resume else None
    if history is None:
        history = Checkpoint(round=0, model_state=model.state_dict(),
                             settings=settings.to_config())
    strategy = make_strategy(settings, model, history.round, history.ledgers)
    recorder = RoundRecorder(settings, model, strategy, history, on_round)
    arch = architecture_of(model)
    config = ConfigRecord({"model-width": arch["width"], "feature-dim": arch["feature_dim"]})
    strategy.start(grid=grid, initial_arrays=ArrayRecord(history.model_state),
                   num_rounds=max(0, settings.rounds - history.round), train_config=config,
                   evaluate_config=ConfigRecord(dict(config)), evaluate_fn=recorder)
    if settings.encrypted:
        return  # only a key holder can turn the encrypted aggregate into a model file
    model.load_state_dict(history.model_state)
    evaluation = recorder.last_evaluation or evaluate(model, recorder.validation.images,
                                                      recorder.validation.labels)
    split = public_split_of(settings)
    card = build_model_card(settings, history.rounds, strategy.ledgers, evaluation,
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
