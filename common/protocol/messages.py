"""The records a federated round exchanges, defined once for the device and the server.

The server's train and evaluate messages carry the global weights under `ARRAYS` and a
`ConfigRecord` under `CONFIG` (the round number and the model's architecture). A device's train
reply carries its update under `ARRAYS`, its numbers under `METRICS` and its privacy state (its
signed ledger and tree head) under `PRIVACY`; `TrainReply` is that reply as one typed value,
built by the device with `to_content` and parsed by the server with `from_content`, which
refuses a reply whose keys are not exactly these (a misspelt key is an error, not a silently
missing number).
"""

import json
import math
from dataclasses import dataclass, fields
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from emofl.common.errors import UserError

ARRAYS = "arrays"  # Flower's default arrayrecord_key
CONFIG = "config"  # Flower's default configrecord_key
METRICS = "metrics"
PRIVACY = "privacy"
NUM_EXAMPLES = "num-examples"  # Flower's default weighted_by_key

GLOBAL_ROUND = "global-round"
MODEL_KIND = "model-kind"
MODEL_WIDTH = "model-width"
FEATURE_DIM = "feature-dim"
MODEL_POOL = "model-pool"


class ReplyError(UserError):
    """A reply that does not follow this protocol; the message names the offending key."""


def architecture_config(architecture: dict) -> ConfigRecord:
    """The config a server sends with the global weights, naming their architecture; the
    strategy adds `GLOBAL_ROUND` each round."""
    return ConfigRecord({MODEL_KIND: architecture["kind"], MODEL_WIDTH: architecture["width"],
                         FEATURE_DIM: architecture["feature_dim"],
                         MODEL_POOL: architecture["pool"]})


def architecture_of_config(config: ConfigRecord) -> dict:
    """The architecture a server message names (the inverse of `architecture_config`)."""
    return {"kind": str(config[MODEL_KIND]), "width": int(config[MODEL_WIDTH]),
            "feature_dim": int(config[FEATURE_DIM]), "pool": str(config[MODEL_POOL])}


def _kebab(name: str) -> str:
    return name.replace("_", "-")


@dataclass(frozen=True)
class TrainReply:
    """One device's answer to a train message: its numbers and privacy state.

    epsilon is the device's cumulative ε over every round it took part in (inf without DP);
    steps is cumulative too. `ledger` is the device's whole signed ledger
    (`common/privacy/signed_ledger.py`, empty without DP); `refusal` is empty unless the device
    refused the round; `tree_head` is the device's signed C2SP checkpoint of its ledger (the
    Merkle root and size, claiming `epsilon`), empty without DP.
    """

    client_id: int
    num_examples: int
    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    train_loss: float
    train_seconds: float
    bytes_up: int
    refused: int
    accountant: str
    ledger: dict
    refusal: str
    tree_head: str = ""

    _PRIVACY_FIELDS = ("accountant", "ledger", "refusal", "tree_head")

    def to_content(self, arrays: ArrayRecord) -> RecordDict:
        """The reply's RecordDict, with the device's update (or nothing) as `arrays`."""
        metrics, privacy = {}, {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in self._PRIVACY_FIELDS:
                privacy[field.name] = json.dumps(value) if field.name == "ledger" else value
            else:
                metrics[_kebab(field.name)] = value
        return RecordDict({ARRAYS: arrays, METRICS: MetricRecord(metrics),
                           PRIVACY: ConfigRecord(privacy)})

    @classmethod
    def from_content(cls, content: RecordDict) -> "TrainReply":
        """Parse a reply; ReplyError when a record or key is missing, unknown or mistyped."""
        metrics = _record(content, METRICS)
        privacy = _record(content, PRIVACY)
        names = [f.name for f in fields(cls)]
        _exact_keys(METRICS, metrics, [_kebab(n) for n in names if n not in cls._PRIVACY_FIELDS])
        _exact_keys(PRIVACY, privacy, list(cls._PRIVACY_FIELDS))
        values: dict[str, Any] = {}
        for field in fields(cls):
            source = privacy if field.name in cls._PRIVACY_FIELDS else metrics
            values[field.name] = _typed(source[_kebab(field.name) if source is metrics
                                               else field.name], field.type, field.name)
        try:
            values["ledger"] = json.loads(values["ledger"])
        except json.JSONDecodeError as err:
            raise ReplyError(f"privacy.ledger is not JSON: {err.msg}") from None
        reply = cls(**values)
        if reply.num_examples < 1 or not isinstance(reply.ledger, dict):
            raise ReplyError("num-examples must be at least 1 and the ledger a JSON object")
        return reply

    @property
    def epsilon_or_none(self) -> float | None:
        """ε as a JSON-safe number: None when infinite (no DP)."""
        return self.epsilon if math.isfinite(self.epsilon) else None


@dataclass(frozen=True)
class EvaluateReply:
    """One device's evaluation of the global weights on the run's held-out faces."""

    client_id: int
    num_examples: int
    accuracy: float
    loss: float

    def to_content(self) -> RecordDict:
        return RecordDict({METRICS: MetricRecord(
            {_kebab(f.name): getattr(self, f.name) for f in fields(self)})})


def _record(content: RecordDict, name: str):
    if name not in content:
        raise ReplyError(f"the reply has no {name!r} record")
    return content[name]


def _exact_keys(record_name: str, record, expected: list[str]) -> None:
    unknown = sorted(set(record) - set(expected))
    missing = sorted(set(expected) - set(record))
    if unknown or missing:
        parts = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing key(s) {', '.join(missing)}"] if missing else [])
        raise ReplyError(f"{record_name} record: {'; '.join(parts)}")


def _typed(value: Any, kind: Any, name: str) -> Any:
    expected = {"int": int, "float": float, "str": str, "dict": str}[
        kind if isinstance(kind, str) else kind.__name__]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool):
        raise ReplyError(f"{name} is {type(value).__name__}, expected {expected.__name__}")
    return value
