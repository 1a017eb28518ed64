"""CKKS secure aggregation inside the federation: key separation, rejection, end to end."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from emofl.client.federated.keys import load_client_keys
from emofl.client.federated.update_encryption import encrypt_update, global_state
from emofl.common.crypto.ckks import CkksError, flatten_state
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, SECRET_CONTEXT, init_keys
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.ckks_fedavg import CkksFedAvg
from emofl.server.federated.keys import load_server_keys
from emofl.simulations.federation.runner import simulate


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


def _trained(records: list[ArrayRecord]) -> list[tuple[dict, SimpleNamespace]]:
    return [({"id": i, "rejected": ""}, SimpleNamespace(content={"arrays": r}))
            for i, r in enumerate(records)]


def test_encrypted_fedavg_equals_plaintext_fedavg_and_survives_a_tampered_update(key_dir):
    client = load_client_keys(key_dir)
    states, sizes = _model_states(4), [1200, 800, 3000, 500]
    records = [encrypt_update(s, n, client) for s, n in zip(states, sizes, strict=True)]
    tampered = from_arrays(records[3])
    flipped = bytearray(tampered.chunks[1])
    flipped[len(flipped) // 2] ^= 0x10
    tampered.chunks[1] = bytes(flipped)
    records[3] = to_arrays(tampered)
    length = len(flatten_state(states[0])[0])
    strategy = CkksFedAvg(keys=load_server_keys(key_dir), expected_length=length)
    trained = _trained(records)
    aggregate, _ = strategy.combine(1, trained)
    assert trained[3][0]["rejected"] and not any(r["rejected"] for r, _ in trained[:3])
    decrypted = global_state(aggregate, states[0], client)
    weights = np.array(sizes[:3], dtype=np.float64)
    for name in states[0]:
        expected = sum(w * s[name].double() for w, s in zip(weights, states, strict=False))
        expected = expected / weights.sum()
        assert torch.max(torch.abs(decrypted[name].double() - expected)) <= 1e-6


def test_malformed_records_and_wrong_chunk_counts_are_rejected_not_fatal(key_dir):
    client = load_client_keys(key_dir)
    states = _model_states(3)
    good = encrypt_update(states[0], 100, client)
    short = from_arrays(encrypt_update(states[1], 100, client))
    short.chunks = short.chunks[:-1]
    garbage = ArrayRecord({"w": torch.zeros(3)})  # not an encrypted update at all
    length = len(flatten_state(states[0])[0])
    strategy = CkksFedAvg(keys=load_server_keys(key_dir), expected_length=length)
    trained = _trained([good, to_arrays(short), garbage])
    aggregate, _ = strategy.combine(1, trained)
    assert aggregate is not None and from_arrays(aggregate).num_examples == 100
    assert [bool(r["rejected"]) for r, _ in trained] == [False, True, True]
    all_bad, _ = strategy.combine(2, _trained([garbage]))
    assert all_bad is None


def test_ckks_and_plain_federations_end_with_the_same_model(tmp_path):
    runs = {}
    for mode in ("none", "ckks"):
        settings = RunSettings(data="synthetic", num_clients=3, rounds=1, dp=False,
                               synthetic_size=150, batch_size=32, model_width=8, alpha=0.0,
                               secure_agg=mode, out=str(tmp_path / mode))
        simulate(settings, progress=False)
        runs[mode] = json.loads((tmp_path / mode / "metrics.json").read_text())
    plain = torch.load(tmp_path / "none" / "model.pt", weights_only=True)
    secure = torch.load(tmp_path / "ckks" / "model.pt", weights_only=True)
    assert max(torch.max(torch.abs(plain[k] - secure[k])).item() for k in plain) <= 1e-5
    checkpoint = torch.load(tmp_path / "ckks" / "checkpoint.pt", weights_only=True)
    assert all(k.startswith("ckks-") for k in checkpoint["model_state"])  # ciphertexts only
    for mode, metrics in runs.items():
        assert metrics["rounds"][0]["wall_seconds"] > 0
        sent = [c["bytes_up"] for c in metrics["rounds"][0]["clients"]]
        assert len(sent) == 3 and min(sent) > 0
        runs[mode] = sent
    expansion = runs["ckks"][0] / runs["none"][0]
    assert 4 < expansion <= 8


def test_ckks_run_resumes_from_its_encrypted_checkpoint(tmp_path):
    settings = RunSettings(data="synthetic", num_clients=3, rounds=1, epsilon=50.0,
                           noise_multiplier=1.0, synthetic_size=150, batch_size=32,
                           model_width=8, alpha=0.0,
                           secure_agg="ckks", out=str(tmp_path))
    simulate(settings, progress=False)
    simulate(RunSettings(out=str(tmp_path), rounds=2, resume=True), progress=False)
    rounds = json.loads((tmp_path / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(not c["rejected"] and not c["refused"] for r in rounds for c in r["clients"])
    assert (tmp_path / "model.pt").exists()


def test_a_reply_without_privacy_report_is_ignored_not_fatal(key_dir):
    from flwr.app import MetricRecord, RecordDict

    strategy = CkksFedAvg(keys=load_server_keys(key_dir), expected_length=10)
    reply = SimpleNamespace(has_error=lambda: False, metadata=SimpleNamespace(src_node_id=7),
                            content=RecordDict({"metrics": MetricRecord({"num-examples": 5})}))
    assert strategy.aggregate_train(1, [reply]) == (None, None)
    assert strategy.last_reports == []
