"""The device side of a federated round, as a Flower ClientApp (message API).

`train`: load the global weights, run one round of local DP-SGD on this device's faces, and
reply with the new weights (in CKKS mode: ciphertexts of n_i·w_i signed by the device's own key
for this run, round and client) plus the device's cumulative privacy spend. `evaluate`: score
the global weights (decrypted in CKKS mode, where the server cannot) on the run's held-out
faces. The same app serves `flwr run .` (settings
from the run config) and `emofl simulate` (settings passed in when the app is built).
"""

import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context, Message
from flwr.clientapp import ClientApp

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.dp_training import LocalUpdate, train_round
from emofl.client.federated.keys import ClientKeys, load_client_keys
from emofl.client.federated.ledger_store import DeviceLedger
from emofl.client.federated.update_encryption import (
    ReceivedState,
    encrypt_update,
    received_state,
)
from emofl.common.crypto.encrypted_update import UpdateOrigin
from emofl.common.crypto.server_step import ServerOptimizer
from emofl.common.data.federated_data import client_faces, public_split_of, validation_faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import build_model
from emofl.common.model.training import evaluate
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.privacy.signing import Signer
from emofl.common.protocol.ckks_records import record_bytes
from emofl.common.protocol.messages import (
    ARRAYS,
    CONFIG,
    GLOBAL_ROUND,
    EvaluateReply,
    TrainReply,
    architecture_of_config,
)
from emofl.common.protocol.run_settings import RunSettings


def client_identity(context: Context, settings: RunSettings) -> tuple[int, int]:
    """(this client's id, number of clients): the partition Flower assigned to this node."""
    config = context.node_config
    partitions = int(config.get("num-partitions", settings.num_clients))
    return int(config.get("partition-id", 0)), partitions


def ledger_dir(settings: RunSettings) -> Path:
    return Path(settings.out) / "clients"


def device_signer(settings: RunSettings, client_id: int) -> Signer | None:
    """The device's own key, which signs its ledger (DP) and its updates (CKKS): in simulation
    a key made for the client in the run folder. None when the run signs nothing."""
    if not (settings.dp or settings.encrypted):
        return None
    return simulated_device_signer(ledger_dir(settings), client_id)


def device_ledger(settings: RunSettings, client_id: int, signer: Signer | None
                  ) -> DeviceLedger | None:
    """The device's ledger under DP, signed by `signer` (None without DP: nothing is spent)."""
    if not settings.dp or signer is None:
        return None
    return DeviceLedger(ledger_dir(settings), client_id, settings.accountant, signer)


def client_keys(settings: RunSettings) -> ClientKeys | None:
    return load_client_keys(settings.key_dir) if settings.encrypted else None


def _global_model(msg: Message, keys: ClientKeys | None) -> tuple[EmotionNet, ReceivedState]:
    """The global model the message carries, and the state it came in (with CKKS: decrypted)."""
    model = build_model(architecture_of_config(msg.content[CONFIG]))
    received = received_state(msg.content[ARRAYS], model.state_dict(), keys)
    model.load_state_dict(received.weights)
    return model, received


def update_origin(msg: Message, context: Context, client_id: int) -> UpdateOrigin:
    """What this round's update is signed for: this run, this global round, this client."""
    return UpdateOrigin(run=context.run_id, global_round=int(msg.content[CONFIG][GLOBAL_ROUND]),
                        client_id=client_id)


def _outgoing(update: LocalUpdate, keys: ClientKeys | None, signer: Signer | None,
              origin: UpdateOrigin, step: tuple[ServerOptimizer, ReceivedState] | None
              ) -> ArrayRecord:
    """The reply's arrays: nothing after a refusal, the weights in plain mode, or ciphertexts
    of the device's share (`step`: the server's optimizer and the state the round started
    from) signed by `signer` for `origin` in CKKS mode."""
    if update.state_dict is None:
        return ArrayRecord()
    if keys is None:
        return ArrayRecord(update.state_dict)
    if signer is None:
        raise ValueError("an encrypted update needs the device's signing key")
    return encrypt_update(update.state_dict, update.num_examples, keys, signer=signer,
                          origin=origin, step=step)


def _train_reply(msg: Message, client_id: int, update: LocalUpdate, device: DeviceLedger | None,
                 settings: RunSettings, arrays: ArrayRecord, seconds: float) -> Message:
    plan = update.plan
    ledger = device.ledger if device else PrivacyLedger(settings.accountant)
    epsilon = ledger.epsilon(settings.delta) if device else float("inf")
    reply = TrainReply(
        client_id=client_id,
        num_examples=update.num_examples,
        epsilon=epsilon,
        delta=settings.delta if settings.dp else 0.0,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=ledger.steps if settings.dp else plan.steps,
        max_grad_norm=settings.max_grad_norm if settings.dp else 0.0,
        train_loss=0.0 if update.refused else update.train_loss,
        train_seconds=seconds,
        bytes_up=record_bytes(arrays),
        refused=int(bool(update.refused)),
        accountant=ledger.accountant if settings.dp else "none",
        ledger=device.export() if device else {},
        refusal=update.refused,
        tree_head=device.tree_head(epsilon, settings.delta) if device else "",
    )
    return Message(content=reply.to_content(arrays), reply_to=msg)


def _seed(settings: RunSettings, msg: Message, client_id: int) -> int | None:
    """None (fresh OS entropy) under DP; a seed derived from the run's otherwise, so that
    non-private runs are reproducible."""
    if settings.dp:
        return None
    return settings.seed * 1_000_003 + int(msg.content[CONFIG][GLOBAL_ROUND]) * 1009 + client_id


def build_client_app(overrides: dict | None = None) -> ClientApp:
    """A ClientApp whose settings are the run config updated with `overrides`."""
    app = ClientApp()

    def settings_of(context: Context) -> RunSettings:
        return RunSettings.from_config({**context.run_config, **(overrides or {})})

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        started = time.perf_counter()
        torch.set_num_threads(1)
        settings = settings_of(context)
        client_id, num_clients = client_identity(context, settings)
        faces = client_faces(settings, client_id, num_clients, public_split_of(settings))
        keys = client_keys(settings)
        model, received = _global_model(msg, keys)
        signer = device_signer(settings, client_id)
        device = device_ledger(settings, client_id, signer)
        try:
            ledger = device.ledger if device else PrivacyLedger(settings.accountant)
            update = train_round(model, faces, settings, ledger, _seed(settings, msg, client_id))
            if device and not update.refused:
                device.record(int(msg.content[CONFIG][GLOBAL_ROUND]), update.plan,
                              settings.max_grad_norm, settings.delta)
            arrays = _outgoing(update, keys, signer, update_origin(msg, context, client_id),
                               (ServerOptimizer.of(settings), received))
            seconds = time.perf_counter() - started
            return _train_reply(msg, client_id, update, device, settings, arrays, seconds)
        finally:
            if device:
                device.close()

    @app.evaluate()
    def evaluate_global_model(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        settings = settings_of(context)
        client_id, _ = client_identity(context, settings)
        faces = validation_faces(settings)
        model, _ = _global_model(msg, client_keys(settings))
        result = evaluate(model, faces.images, faces.labels)
        reply = EvaluateReply(client_id=client_id, num_examples=result.n,
                              accuracy=result.accuracy, loss=result.loss)
        return Message(content=reply.to_content(), reply_to=msg)

    return app


app = build_client_app()
