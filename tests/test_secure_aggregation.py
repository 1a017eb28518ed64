"""CKKS secure aggregation inside the federation: key separation, rejection, end to end."""

import json
import shutil
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.keys import load_client_keys
from emofl.client.federated.update_encryption import encrypt_update, global_state
from emofl.common.crypto.ckks import CkksError, flatten_state
from emofl.common.crypto.encrypted_update import UpdateOrigin
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, SECRET_CONTEXT, init_keys
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.common.protocol.messages import ReplyError, TrainReply
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.checkpoint import load_checkpoint
from emofl.server.federated.ckks_fedavg import CkksFedAvg
from emofl.server.federated.keys import load_server_keys
from emofl.server.federated.privacy_bookkeeping import PrivacyBookkeeping, RoundReports
from emofl.server.federated.tree_heads import TreeHeadBook
from emofl.simulations.federation.runner import simulate

RUN = 4242


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    init_keys(path)
    return path


def test_server_keys_are_public_and_the_server_refuses_a_secret_context(key_dir, tmp_path):
    keys = load_server_keys(key_dir)
    assert not keys.public_context.is_private()
    leaked = tmp_path / "leaked"
    shutil.copytree(key_dir, leaked)
    shutil.copy(leaked / SECRET_CONTEXT, leaked / PUBLIC_CONTEXT)  # a secret context in its place
    with pytest.raises(CkksError, match="secret"):
        load_server_keys(leaked)


def _model_states(count: int) -> list[dict[str, torch.Tensor]]:
    states = []
    for seed in range(count):
        torch.manual_seed(seed)
        states.append(EmotionNet(width=8).state_dict())
    return states


def _reply(client_id: int, arrays: ArrayRecord, num_examples: int = 100, **changes):
    """A device's train reply as the server receives it."""
    fields = dict(client_id=client_id, num_examples=num_examples, epsilon=1.0, delta=1e-5,
                  noise_multiplier=1.0, sample_rate=0.1, steps=10, max_grad_norm=1.0,
                  train_loss=1.0, train_seconds=1.0, bytes_up=1, refused=0, accountant="rdp",
                  ledger={}, refusal="")
    content = TrainReply(**{**fields, **changes}).to_content(arrays)
    return SimpleNamespace(has_error=lambda: False, content=content,
                           metadata=SimpleNamespace(src_node_id=100 + client_id))


def signed_update(key_dir, state, num_examples: int, client_id: int, global_round: int = 1,
                  run: int = RUN, signer_id: int | None = None) -> ArrayRecord:
    """Client `client_id`'s encrypted update for `global_round`, signed with the key of client
    `signer_id` (its own by default); simulated device keys live in `key_dir/devices`."""
    signer = simulated_device_signer(key_dir / "devices",
                                     client_id if signer_id is None else signer_id)
    return encrypt_update(state, num_examples, load_client_keys(key_dir), signer=signer,
                          origin=UpdateOrigin(run, global_round, client_id))


def _bookkept(key_dir, length: int) -> tuple[PrivacyBookkeeping, list[RoundReports]]:
    """The CKKS strategy as the ServerApp composes it (each device's key pinned on first use
    in a fresh book), and the reports it hands on."""
    reports: list[RoundReports] = []
    book = TreeHeadBook(tempfile.mkdtemp(dir=key_dir))
    aggregator = CkksFedAvg(keys=load_server_keys(key_dir), expected_length=length, run_id=RUN,
                            device_key=book.device_key)
    strategy = PrivacyBookkeeping(aggregator, round_offset=0, on_round=reports.append,
                                  on_evaluate=lambda *_: None, screen=aggregator.screen_updates)
    return strategy, reports


def test_encrypted_fedavg_equals_plaintext_fedavg_and_survives_a_tampered_update(key_dir):
    client = load_client_keys(key_dir)
    states, sizes = _model_states(4), [1200, 800, 3000, 500]
    records = [signed_update(key_dir, s, n, i)
               for i, (s, n) in enumerate(zip(states, sizes, strict=True))]
    tampered = from_arrays(records[3])
    flipped = bytearray(tampered.chunks[1])
    flipped[len(flipped) // 2] ^= 0x10
    tampered.chunks[1] = bytes(flipped)
    records[3] = to_arrays(tampered)
    length = len(flatten_state(states[0])[0])
    strategy, reports = _bookkept(key_dir, length)
    replies = [_reply(i, r, n) for i, (r, n) in enumerate(zip(records, sizes, strict=True))]
    aggregate, _ = strategy.aggregate_train(1, replies)
    clients = reports[0].clients
    assert clients[3]["rejected"] and not any(c["rejected"] for c in clients[:3])
    decrypted = global_state(aggregate, states[0], client)
    weights = np.array(sizes[:3], dtype=np.float64)
    for name in states[0]:
        expected = sum(w * s[name].double() for w, s in zip(weights, states, strict=False))
        expected = expected / weights.sum()
        assert torch.max(torch.abs(decrypted[name].double() - expected)) <= 1e-6


def test_malformed_records_and_wrong_chunk_counts_are_rejected_not_fatal(key_dir):
    states = _model_states(3)
    good = signed_update(key_dir, states[0], 100, 0)
    short = from_arrays(signed_update(key_dir, states[1], 100, 1))
    short.chunks = short.chunks[:-1]
    garbage = ArrayRecord({"w": torch.zeros(3)})  # not an encrypted update at all
    length = len(flatten_state(states[0])[0])
    strategy, reports = _bookkept(key_dir, length)
    replies = [_reply(0, good), _reply(1, to_arrays(short)), _reply(2, garbage)]
    aggregate, _ = strategy.aggregate_train(1, replies)
    assert aggregate is not None and from_arrays(aggregate).num_examples == 100
    assert [bool(c["rejected"]) for c in reports[0].clients] == [False, True, True]
    all_bad, _ = strategy.aggregate_train(2, [_reply(2, garbage)])
    assert all_bad is None and reports[1].aggregated == 0


def test_ckks_and_plain_federations_end_with_the_same_model(tmp_path):
    """With server momentum: Flower's FedAvgM on the server in plain mode, the same step run by
    the key holders under CKKS (round 2 is where the momentum enters). The plain run stops
    after round 1 and is resumed, so its momentum must come back from the checkpoint. The
    devices train the head with SGD, as the shipped recipe does: training a random backbone
    for a round magnifies CKKS' ~1e-7 error in round 1's model to ~5e-4 (in plain mode too,
    for a perturbation that small), which would hide what this test compares."""
    plan = dict(data="synthetic", num_clients=3, dp=False, synthetic_size=150, batch_size=32,
                model_width=8, alpha=0.0, trainable="head", client_optimizer="sgd",
                learning_rate=0.1, server_momentum=0.9, server_learning_rate=0.5)
    simulate(RunSettings(**plan, rounds=1, out=str(tmp_path / "none")), progress=False)
    assert load_checkpoint(tmp_path / "none").server_momentum
    simulate(RunSettings(out=str(tmp_path / "none"), rounds=2, resume=True), progress=False)
    simulate(RunSettings(**plan, rounds=2, secure_agg="ckks", out=str(tmp_path / "ckks")),
             progress=False)
    plain = torch.load(tmp_path / "none" / "model.pt", weights_only=True)
    secure = torch.load(tmp_path / "ckks" / "model.pt", weights_only=True)
    assert max(torch.max(torch.abs(plain[k] - secure[k])).item() for k in plain) <= 1e-5
    checkpoint = torch.load(tmp_path / "ckks" / "checkpoint.pt", weights_only=True)
    assert all(k.startswith("ckks-") for k in checkpoint["model_state"])  # ciphertexts only
    sent = {}
    for mode in ("none", "ckks"):
        metrics = json.loads((tmp_path / mode / "metrics.json").read_text())
        assert metrics["rounds"][0]["wall_seconds"] > 0
        sent[mode] = [c["bytes_up"] for c in metrics["rounds"][0]["clients"]]
        assert len(sent[mode]) == 3 and min(sent[mode]) > 0
    expansion = sent["ckks"][0] / (2 * sent["none"][0])  # weights and momentum: 2x the values
    assert 4 < expansion <= 8


def test_ckks_run_resumes_from_its_encrypted_checkpoint(tmp_path):
    """Under DP and with server momentum, which then travels encrypted in the checkpoint."""
    settings = RunSettings(data="synthetic", num_clients=3, rounds=1, epsilon=50.0,
                           noise_multiplier=1.0, synthetic_size=150, batch_size=32,
                           model_width=8, alpha=0.0, server_momentum=0.9,
                           secure_agg="ckks", out=str(tmp_path))
    simulate(settings, progress=False)
    simulate(RunSettings(out=str(tmp_path), rounds=2, resume=True), progress=False)
    rounds = json.loads((tmp_path / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(not c["rejected"] and not c["refused"] for r in rounds for c in r["clients"])
    assert (tmp_path / "model.pt").exists()


def test_a_reply_without_privacy_report_is_reported_not_fatal(key_dir):
    from flwr.app import MetricRecord, RecordDict

    strategy, reports = _bookkept(key_dir, 10)
    reply = SimpleNamespace(has_error=lambda: False, metadata=SimpleNamespace(src_node_id=7),
                            content=RecordDict({"metrics": MetricRecord({"num-examples": 5})}))
    assert strategy.aggregate_train(1, [reply]) == (None, None)
    assert reports[0].clients == []
    assert "node 7" in reports[0].unusable[0] and "privacy" in reports[0].unusable[0]


def test_a_misspelt_reply_key_is_refused_by_name(key_dir):
    content = _reply(0, ArrayRecord()).content
    metrics = content["metrics"]
    metrics["num-exmples"] = metrics.pop("num-examples")
    with pytest.raises(ReplyError, match="unknown key.*num-exmples.*missing key.*num-examples"):
        TrainReply.from_content(content)
    strategy, reports = _bookkept(key_dir, 10)
    reply = SimpleNamespace(has_error=lambda: False, metadata=SimpleNamespace(src_node_id=3),
                            content=content)
    assert strategy.aggregate_train(1, [reply]) == (None, None)
    assert "num-exmples" in reports[0].unusable[0]
