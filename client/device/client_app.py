"""The ClientApp an enrolled device runs under `flower-supernode` (`emofl client`).

It is the simulation's round (client/federated/client_app.py: DP-SGD by `train_round`, the
signed `DeviceLedger`, the same reply), with what is the device's own instead of the run's:
- who it is: the client id of its bundle, its ledger and its CKKS updates signed with its
  enrolled Ed25519 key;
- its faces: every face at its `--data` (or its own synthetic faces), not a partition;
- its state: the ledger in `DEV/state/`, the CKKS keys opened from its bundle in `DEV/ckks/`;
- its consent: ε and δ are capped by what it consented to (a run asking more gets the
  device's budget, spent over the planned rounds), and once consent is withdrawn it refuses
  every round, saying so in its reply.
The SuperNode passes the device folder and data as node config (`emofl-device`, `emofl-data`).
"""

import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from emofl.client.device.bundle import ckks_dir, installed_bundle
from emofl.client.device.device_folder import (
    NODE_CONFIG_DATA,
    NODE_CONFIG_DEVICE,
    read_consent,
    state_dir,
    withdrawal,
)
from emofl.client.device.keys import load_signing_key
from emofl.client.federated.client_app import (
    _global_model,
    _outgoing,
    _train_reply,
    update_origin,
)
from emofl.client.federated.client_app import build_client_app as build_run_client_app
from emofl.client.federated.dp_training import LocalUpdate, plan_round, train_round
from emofl.client.federated.keys import ClientKeys, load_client_keys
from emofl.client.federated.ledger_store import DeviceLedger
from emofl.client.federated.update_encryption import ReceivedState
from emofl.common.crypto.server_step import ServerOptimizer
from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import Faces, to_faces
from emofl.common.errors import UserError
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.privacy.signed_ledger import ledger_origin
from emofl.common.privacy.signing import Ed25519Signer
from emofl.common.protocol.messages import CONFIG, GLOBAL_ROUND
from emofl.common.protocol.run_settings import RunSettings


@dataclass(frozen=True)
class DeviceNode:
    """This SuperNode's device: its folder, its data, and who it was enrolled as."""

    root: Path
    data: str
    client_id: int

    @classmethod
    def from_context(cls, context: Context) -> "DeviceNode":
        config = context.node_config
        if NODE_CONFIG_DEVICE not in config:
            raise UserError(f"this SuperNode has no `{NODE_CONFIG_DEVICE}` node config; start "
                            "it with `emofl client`")
        root = Path(str(config[NODE_CONFIG_DEVICE]))
        return cls(root=root, data=str(config.get(NODE_CONFIG_DATA, "synthetic")),
                   client_id=installed_bundle(root).client_id)

    def settings(self, run: RunSettings) -> RunSettings:
        """The run's settings with the device's own data, state, keys and consented budget."""
        consent = read_consent(self.root)
        return replace(run, data=self.data, val_data="", num_clients=1, alpha=0.0,
                       init_model="", out=str(self.root),
                       epsilon=min(run.epsilon, float(consent["epsilon"])),
                       delta=min(run.delta, float(consent["delta"])),
                       key_dir=str(ckks_dir(self.root)) if run.encrypted else "")

    def faces(self, settings: RunSettings) -> Faces:
        return _device_faces(self.data, settings.synthetic_size, settings.seed + self.client_id)

    def signer(self) -> Ed25519Signer:
        """The device's enrolled key, which signs its ledger and its updates."""
        return Ed25519Signer(ledger_origin(self.client_id), load_signing_key(self.root))

    def ledger(self, settings: RunSettings, signer: Ed25519Signer) -> DeviceLedger | None:
        if not settings.dp:
            return None
        return DeviceLedger(state_dir(self.root), self.client_id, settings.accountant, signer)


@lru_cache(maxsize=2)
def _device_faces(data: str, synthetic_size: int, seed: int) -> Faces:
    """All the device's faces (synthetic ones seeded per device, so devices differ)."""
    return to_faces(load_dataset(data, synthetic_size=synthetic_size, seed=seed))


def _round(msg: Message, node: DeviceNode, settings: RunSettings, device: DeviceLedger | None,
           keys: ClientKeys | None) -> tuple[LocalUpdate, ReceivedState | None]:
    """The device's round, and the global state it started from (None when it withdrew)."""
    faces = node.faces(settings)
    refusal = withdrawal(node.root)
    if refusal:
        return LocalUpdate(None, len(faces), float("nan"), plan_round(settings, len(faces)),
                           refused=refusal), None
    ledger = device.ledger if device else PrivacyLedger(settings.accountant)
    model, received = _global_model(msg, keys)
    update = train_round(model, faces, settings, ledger, None)
    if device and not update.refused:
        device.record(int(msg.content[CONFIG][GLOBAL_ROUND]), update.plan,
                      settings.max_grad_norm, settings.delta)
    return update, received


def build_device_app() -> ClientApp:
    """The ClientApp of an enrolled device (see the module docstring)."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        started = time.perf_counter()
        torch.set_num_threads(1)
        node = DeviceNode.from_context(context)
        settings = node.settings(RunSettings.from_config(context.run_config))
        signer = node.signer()
        device = node.ledger(settings, signer)
        try:
            keys = load_client_keys(settings.key_dir) if settings.encrypted else None
            update, received = _round(msg, node, settings, device, keys)
            step = (ServerOptimizer.of(settings), received) if received else None
            arrays = _outgoing(update, keys, signer, update_origin(msg, context, node.client_id),
                               step)
            return _train_reply(msg, node.client_id, update, device, settings, arrays,
                                time.perf_counter() - started)
        finally:
            if device:
                device.close()

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        node = DeviceNode.from_context(context)
        run = RunSettings.from_config(context.run_config)
        overrides = {"key-dir": str(ckks_dir(node.root)) if run.encrypted else ""}
        node_context = replace(context, node_config={"partition-id": node.client_id,
                                                     "num-partitions": run.num_clients})
        return build_run_client_app(overrides)(msg, node_context)

    return app


app = build_device_app()
