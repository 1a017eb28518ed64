"""The coordinator of a federated run, as a Flower ServerApp (message API).

It runs FedAvg (or `CkksFedAvg` with secure aggregation, which sums only updates signed by
their devices for this run and round) wrapped in `PrivacyBookkeeping` for the planned rounds.
After each round `RoundRecorder` records the global model's held-out accuracy — evaluated here
in plain mode, by one device in CKKS mode, where the server cannot read the model — writes
metrics.json and an atomic checkpoint (global model or its ciphertexts, round, every device's
privacy state, metrics). In plain mode the final model the strategy returns is then released
with its card. With `resume` it continues from the run
directory's checkpoint.
"""

from logging import ERROR

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvgM

from emofl.common.crypto.ckks import flatten_state
from emofl.common.crypto.server_step import ServerOptimizer
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import architecture_of, build_model, load_model
from emofl.common.model.release import release_model
from emofl.common.protocol.messages import architecture_config
from emofl.common.protocol.run_settings import RunSettings
from emofl.common.storage.atomic_io import make_dir
from emofl.server.deployment.registry import EnrolledKeys
from emofl.server.federated.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from emofl.server.federated.ckks_fedavg import CkksFedAvg
from emofl.server.federated.keys import load_server_keys
from emofl.server.federated.privacy_bookkeeping import PrivacyBookkeeping
from emofl.server.federated.round_recorder import RoundCallback, RoundFailed, RoundRecorder
from emofl.server.federated.tree_heads import TreeHeadBook


def initial_model(settings: RunSettings) -> EmotionNet:
    """The starting point: the init model when given, else a seeded random one."""
    if settings.init_model:
        return load_model(settings.init_model)[0]
    torch.manual_seed(settings.seed)
    return build_model({"width": settings.model_width, "kind": settings.model_kind,
                        "pool": settings.model_pool})


def open_key_book(settings: RunSettings) -> TreeHeadBook | None:
    """Where the devices' keys are looked up (and their tree heads kept), when the run checks
    signatures: under DP (ledgers) and in CKKS mode (updates). Enrolled keys come from the
    registry in a deployment; in simulation a device's first key is pinned."""
    if not (settings.dp or settings.encrypted):
        return None
    enrolled = EnrolledKeys(settings.registry) if settings.registry else None
    return TreeHeadBook(make_dir(settings.out), enrolled)


def make_strategy(settings: RunSettings, model: EmotionNet, round_offset: int,
                  recorder: RoundRecorder, *, run_id: int,
                  key_book: TreeHeadBook | None) -> PrivacyBookkeeping:
    """FedAvg over all devices (on ciphertexts in CKKS mode, each update verified against its
    device's key in `key_book`, signed for `run_id`) with privacy bookkeeping; under DP every
    device's tree head is checked and kept in `key_book`."""
    sampling = dict(fraction_train=1.0, min_train_nodes=settings.num_clients,
                    min_available_nodes=settings.num_clients)
    screen = None
    if settings.encrypted:
        if key_book is None:
            raise ValueError("a CKKS run verifies updates against a key book")
        # The key holders run the server's optimizer step; the state may carry its momentum.
        model_length = len(flatten_state(model.state_dict())[0])
        length = ServerOptimizer.of(settings).state_length(model_length)
        aggregator = CkksFedAvg(keys=load_server_keys(settings.key_dir), expected_length=length,
                                run_id=run_id, device_key=key_book.device_key, **sampling)
        screen = aggregator.screen_updates
    else:
        aggregator = FedAvgM(fraction_evaluate=0.0,
                             server_learning_rate=settings.server_learning_rate,
                             server_momentum=settings.server_momentum, **sampling)
        # A resumed run continues with the momentum it had, as an uninterrupted one would.
        momentum = [t.numpy() for t in recorder.history.server_momentum]
        aggregator.momentum_vector = momentum or None
        recorder.momentum_of = aggregator
    return PrivacyBookkeeping(aggregator, round_offset=round_offset,
                              on_round=recorder.round_trained,
                              on_evaluate=recorder.round_evaluated, screen=screen,
                              tree_heads=key_book if settings.dp else None)


def run_federation(grid: Grid, settings: RunSettings,
                   on_round: RoundCallback | None = None) -> None:
    """Run (or resume) the planned rounds on `grid` and write the run directory."""
    model = initial_model(settings)
    history = load_checkpoint(settings.out) if settings.resume else None
    if history is None:
        history = Checkpoint(round=0, model_state=model.state_dict(),
                             settings=settings.to_config())
        # Written before round 1, whose devices are charged before the server can checkpoint
        # it: a run that fails then (a full disk) is resumed with its ledgers, never restarted.
        save_checkpoint(settings.out, history)
    recorder = RoundRecorder(settings, model, history, on_round)
    key_book = open_key_book(settings)
    config = architecture_config(architecture_of(model))
    start = ArrayRecord(history.model_state)
    try:
        strategy = make_strategy(settings, model, history.round, recorder,
                                 run_id=grid.run.run_id, key_book=key_book)
        result = strategy.start(grid=grid, initial_arrays=start,
                                num_rounds=max(0, settings.rounds - history.round),
                                train_config=config, evaluate_config=ConfigRecord(dict(config)),
                                evaluate_fn=recorder)
    except RoundFailed as failure:
        log(ERROR, "the run stops: %s; its model is not released", failure)
        return
    finally:
        if key_book is not None:
            key_book.close()
    if settings.encrypted:
        return  # only a key holder can turn the encrypted aggregate into a model file
    final = result.arrays if len(result.arrays) else start
    model.load_state_dict(final.to_torch_state_dict())
    release_model(model, settings, history.rounds, history.ledgers)


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
