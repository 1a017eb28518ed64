"""One federated run's settings, shared by the ServerApp, the ClientApp and `emofl simulate`.

Each setting is declared once, here: its type, default, help text and allowed values. Flower
passes run settings as a flat mapping of primitive values (`context.run_config`, from
`[tool.flwr.app.config]` in pyproject.toml or `--run-config`), with Flower's kebab-case keys;
`emofl simulate` generates its options from the same declarations. Either way the values are
checked when `RunSettings` is made, so `flwr run .` refuses what `emofl simulate` refuses.
"""

from dataclasses import asdict, dataclass
from typing import Any

from emofl.common.errors import SettingsError
from emofl.common.privacy.events import ACCOUNTANTS
from emofl.common.protocol.choices import (
    CLIENT_OPTIMIZERS,
    MODEL_KINDS,
    POOLS,
    SECURE_AGG,
    TRAINABLE,
)
from emofl.common.protocol.setting import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    OPEN_UNIT_INTERVAL,
    POSITIVE,
    Bound,
    Setting,
    setting,
    settings_of,
)


@dataclass(frozen=True)
class RunSettings:
    """Everything a round needs to know; SettingsError (one line, naming the setting by its
    kebab-case key) when a value is not allowed.

    batch_size is the expected Poisson batch size when sample_rate is 0: the sample rate is
    then 1 / ceil(n_i / B). The defaults are the DP-FedSGD recipe that learns from a random
    start on synthetic faces (docs/benchmarks.md §9): large Poisson batches (q = 0.25), ten
    DP-SGD steps a round at a high learning rate, five rounds.
    """

    data: str = setting("synthetic", "'synthetic' or FER2013 data (a CSV or an image folder)")
    val_data: str = setting(
        "", "held-out set for the server's evaluation (default: a seeded 10% of --data kept out "
        "of the federation; synthetic data: freshly generated faces)")
    num_clients: int = setting(4, "participants the data is split into", bound=AT_LEAST_ONE,
                               flag="--clients")
    rounds: int = setting(5, "planned federated rounds; clients spread their ε over these",
                          bound=AT_LEAST_ONE)
    dp: bool = setting(True, "train without differential privacy (no DP-SGD, no guarantee)",
                       exclusive_group="budget")
    epsilon: float = setting(8.0, "each client's total ε over all rounds", bound=POSITIVE,
                             exclusive_group="budget")
    delta: float = setting(1e-5, "each client's δ", bound=OPEN_UNIT_INTERVAL)
    noise_multiplier: float = setting(
        0.0, "σ of DP-SGD; 0 derives it from ε, δ and the planned rounds", bound=NON_NEGATIVE)
    max_grad_norm: float = setting(1.0, "per-sample clipping bound C", bound=POSITIVE)
    accountant: str = setting("rdp", "Opacus accountant that turns DP-SGD events into ε",
                              choices=ACCOUNTANTS)
    alpha: float = setting(0.5, "Dirichlet label skew; 0 for an IID split",
                           bound=Bound("positive (or 0 for IID)", lambda v: v >= 0))
    seed: int = setting(0, "seeds the split, sampling, initialization and noise",
                        bound=NON_NEGATIVE)
    local_epochs: int = setting(1, "local epochs per round", bound=AT_LEAST_ONE)
    batch_size: int = setting(64, "expected batch size of local training (sets q = 1/ceil(n/B) "
                              "when --sample-rate is 0)", bound=AT_LEAST_ONE)
    sample_rate: float = setting(
        0.25, "Poisson rate q at which each step samples a client's faces; 0 derives it from "
        "--batch-size", bound=Bound("in [0, 1]", lambda v: 0 <= v <= 1))
    local_steps: int = setting(10, "DP-SGD steps per round; 0: --local-epochs passes of 1/q steps",
                               bound=NON_NEGATIVE)
    augment_multiplicity: int = setting(
        1, "augmented copies of each sampled face whose gradients are averaged before clipping",
        bound=AT_LEAST_ONE)
    client_optimizer: str = setting(
        "sgd", "the device's optimizer on its privatised gradient (sgd with --server-momentum "
        "is the DP-FedSGD recipe)", choices=CLIENT_OPTIMIZERS)
    learning_rate: float = setting(2.0, "the device's learning rate", bound=POSITIVE,
                                   flag="--lr")
    server_learning_rate: float = setting(
        1.0, "the server's learning rate on the averaged update (FedAvgM)", bound=POSITIVE)
    server_momentum: float = setting(
        0.0, "the server's momentum on the averaged update (FedAvgM; with secure-agg ckks the "
        "devices run this step on the state they decrypt)",
        bound=Bound("in [0, 1)", lambda v: 0 <= v < 1))
    trainable: str = setting("all", "which parameters clients train: all, top (last block, "
                             "projection and head), projection (projection and head) or head",
                             choices=TRAINABLE)
    init_model: str = setting(
        "", "start from this model file (default: random init); faces of the public split its "
        "card names are kept out of every client")
    synthetic_size: int = setting(1000, "synthetic faces per client", bound=AT_LEAST_ONE)
    model_kind: str = setting("separable", "backbone of a new model; --init-model brings its own",
                              choices=MODEL_KINDS)
    model_width: int = setting(16, "channel width of a new backbone; --init-model brings its own",
                               bound=AT_LEAST_ONE)
    model_pool: str = setting(
        POOLS[0], "how a new backbone pools its last feature map: a learned weight per channel "
        "and position, or a global average; --init-model brings its own", choices=POOLS)
    secure_agg: str = setting("none", "ckks: the server adds encrypted updates it cannot read",
                              choices=SECURE_AGG)
    key_dir: str = setting("", "CKKS key directory from `emofl keys init`; clients read the "
                           "secret context there, the server only the public one (default: new "
                           "keys in --out)", flag="--keys")
    out: str = setting("runs/flwr", "run directory: checkpoints, client ledgers, metrics, model",
                       cli_default="runs/simulate")
    resume: bool = setting(False, "continue the run in --out from its last checkpoint")
    registry: str = setting("", "a deployment's enrollment registry: each device's tree heads "
                            "must be signed with the key it enrolled (set by `emofl run`)",
                            on_cli=False)
    command: str = setting("", "the command line that started the run, recorded in the model "
                           "card", on_cli=False)

    def __post_init__(self) -> None:
        for spec in RUN_SETTINGS:
            spec.check(getattr(self, spec.name), spec.key)
        if self.key_dir and not self.encrypted:
            raise SettingsError("key-dir (--keys) is for secure-agg ckks; without it updates "
                                "travel in plaintext")

    @property
    def encrypted(self) -> bool:
        """Whether updates travel as CKKS ciphertexts the server adds without reading."""
        return self.secure_agg == "ckks"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RunSettings":
        """Build from a Flower run config, ignoring keys that are not settings; SettingsError
        naming the key for a value of the wrong type or out of range."""
        by_name = {spec.name: spec for spec in RUN_SETTINGS}
        values = {}
        for key, value in config.items():
            spec = by_name.get(key.replace("-", "_"))
            if spec is not None:
                values[spec.name] = spec.parse(value, spec.key)
        return cls(**values)

    def to_config(self) -> dict[str, Any]:
        """The flat kebab-case mapping Flower carries in a run config."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}


RUN_SETTINGS: tuple[Setting, ...] = settings_of(RunSettings)
"""Every run setting, in field order: the one definition the CLI and run configs read."""
