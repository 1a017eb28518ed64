"""What a run keeps of every round: the global model's held-out accuracy, each device's report,
metrics.json and an atomic checkpoint.

The recorder is Flower's `evaluate_fn` (called after every round with the new global weights)
and the observer `PrivacyBookkeeping` hands each round's reports and the devices' evaluation
to. In plain mode it evaluates the model itself; in CKKS mode, where the server cannot read the
model, it records the accuracy one device measured.
"""

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp.strategy import FedAvgM

from emofl.common.data.federated_data import validation_faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.training import evaluate
from emofl.common.protocol.run_settings import RunSettings
from emofl.common.storage import atomic_io
from emofl.server.federated.checkpoint import Checkpoint, save_checkpoint
from emofl.server.federated.privacy_bookkeeping import RoundReports

RoundCallback = Callable[[dict], None]
METRICS_FILE = "metrics.json"


class RoundFailed(Exception):
    """A round in which no device's update was aggregated although not every device refused
    (all failed, were rejected or sent malformed replies): the run stops there."""


def round_failure(entry: dict) -> str:
    """Why the round recorded in `entry` failed, or "" when it did not."""
    clients = entry["clients"]
    if entry.get("aggregated", 1) or (clients and all(c["refused"] for c in clients)):
        return ""
    rejected = sum(bool(c["rejected"]) for c in clients)
    return (f"round {entry['round']}: no update was aggregated ({rejected} rejected, "
            f"{len(entry['unusable_replies'])} failed or malformed, "
            f"{sum(bool(c['refused']) for c in clients)} refused)")


class RoundRecorder:
    """Evaluates, records and checkpoints each round of a run into `history`."""

    def __init__(self, settings: RunSettings, model: EmotionNet, history: Checkpoint,
                 on_round: RoundCallback | None = None) -> None:
        self.settings, self.model, self.history = settings, model, history
        self.on_round = on_round
        self.validation = None if settings.encrypted else validation_faces(settings)
        self._reports: RoundReports | None = None
        self._device_evaluation: dict = {}
        self._round_started = time.perf_counter()
        # The plain-mode FedAvgM whose momentum each checkpoint keeps (set by make_strategy).
        self.momentum_of: FedAvgM | None = None

    def round_trained(self, reports: RoundReports) -> None:
        """The devices' reports of the round just aggregated."""
        self._reports = reports

    def round_evaluated(self, global_round: int, metrics: MetricRecord | None) -> None:
        """The devices' aggregated evaluation of the new global model (CKKS mode)."""
        self._device_evaluation = dict(metrics or {})

    def _evaluate(self, arrays: ArrayRecord) -> dict:
        if self.settings.encrypted:  # the server cannot read the model: a device evaluated it
            metrics = self._device_evaluation
            return {"accuracy": float(metrics.get("accuracy", math.nan)),
                    "loss": float(metrics.get("loss", math.nan))}
        self.model.load_state_dict(arrays.to_torch_state_dict())
        result = evaluate(self.model, self.validation.images, self.validation.labels)
        return {"accuracy": result.accuracy, "loss": result.loss}

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            if not self.history.initial and not self.settings.encrypted:
                self.history.initial.update(self._evaluate(arrays))
            self._round_started = time.perf_counter()
            return None
        result = self._evaluate(arrays)
        reports = self._reports or RoundReports(round=self.history.round + 1)
        entry = {"round": reports.round, **result,
                 "wall_seconds": time.perf_counter() - self._round_started,
                 "clients": reports.clients, "unusable_replies": reports.unusable,
                 "aggregated": reports.aggregated}
        self.history.rounds.append(entry)
        self.history.round = entry["round"]
        self.history.model_state = {k: v.clone() for k, v in arrays.to_torch_state_dict().items()}
        momentum = self.momentum_of.momentum_vector if self.momentum_of else None
        self.history.server_momentum = [torch.tensor(v) for v in momentum or []]
        self.history.ledgers.update(reports.ledgers)
        out = Path(self.settings.out)
        save_checkpoint(out, self.history)
        atomic_io.write_json(out / METRICS_FILE,
                             {"initial": self.history.initial, "rounds": self.history.rounds,
                              "notes": self.history.notes})
        if self.on_round:
            self.on_round(entry)
        if failure := round_failure(entry):
            raise RoundFailed(failure)
        self._reports, self._device_evaluation = None, {}
        self._round_started = time.perf_counter()
        return MetricRecord(result)
