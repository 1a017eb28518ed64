"""One federated run's settings, shared by the ServerApp, the ClientApp and `emofl simulate`.

Flower passes run settings as a flat mapping of primitive values (`context.run_config`, from
`[tool.flwr.app.config]` in pyproject.toml or `--run-config`); this dataclass gives them
names, types and defaults. Keys use Flower's kebab-case spelling.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RunSettings:
    """Everything a round needs to know.

    data: "synthetic" or a path to FER2013 data (CSV or image folders) each client reads.
    val_data: held-out set for the server's centralized evaluation ("" → a seeded 10% split
        of `data` kept out of the federation; synthetic → freshly generated faces).
    num_clients: number of participants the data is split into.
    rounds: planned federated rounds (clients spread their ε budget over these).
    dp: train with DP-SGD; when False, plain SGD and no privacy guarantee.
    epsilon, delta: each client's total budget over all rounds.
    noise_multiplier: σ for DP-SGD; 0 → derived from (epsilon, delta) and the plan.
    max_grad_norm: per-sample clipping bound C.
    accountant: "rdp" or "prv" (Opacus).
    alpha: Dirichlet label-skew concentration; 0 → IID split.
    seed: seeds the split, sampling, initialization and noise.
    local_epochs, batch_size, learning_rate: local training (Adam; DP-Adam under DP);
        batch_size is the expected Poisson batch size: the sample rate is 1 / ceil(n_i / B).
    trainable: which parameters clients train: "all", "head", or "top" (last block + head).
    init_model: a model file to start from ("" → random init). When its card names a public
        split of the training data, those faces are excluded from every client.
    synthetic_size: faces per client when data is "synthetic".
    model_width: channel width of a freshly initialised backbone (ignored with init_model).
    secure_agg: "none" (the server averages plaintext updates) or "ckks" (clients send CKKS
        ciphertexts of n_i·w_i; the server adds them without being able to read them).
    key_dir: CKKS key directory (`emofl keys init`); clients read the secret context there,
        the server only the public one.
    out: run directory (checkpoints, client ledgers, metrics).
    resume: continue from the run directory's last checkpoint.
    command: the command line that started the run, recorded in the model card.
    """

    data: str = "synthetic"
    val_data: str = ""
    num_clients: int = 4
    rounds: int = 3
    dp: bool = True
    epsilon: float = 8.0
    delta: float = 1e-5
    noise_multiplier: float = 0.0
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    alpha: float = 0.5
    seed: int = 0
    local_epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 3e-4
    trainable: str = "all"
    init_model: str = ""
    synthetic_size: int = 300
    model_width: int = 16
    secure_agg: str = "none"
    key_dir: str = ""
    out: str = "runs/flwr"
    resume: bool = False
    command: str = ""

    @property
    def encrypted(self) -> bool:
        """Whether updates travel as CKKS ciphertexts the server adds without reading."""
        return self.secure_agg == "ckks"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RunSettings":
        """Build from a Flower run config, ignoring keys that are not settings."""
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in config.items():
            name = key.replace("-", "_")
            if name in known:
                values[name] = _coerce(value, known[name])
        return cls(**values)

    def to_config(self) -> dict[str, Any]:
        """The flat kebab-case mapping Flower carries in a run config."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}


def _coerce(value: Any, type_name: Any) -> Any:
    kind = {"str": str, "int": int, "float": float, "bool": bool}[
        type_name if isinstance(type_name, str) else type_name.__name__
    ]
    if kind is bool and isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return kind(value)
