"""FedAvgM under CKKS: the key holders' folded step gives Flower's FedAvgM model exactly."""

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import FedAvgM
from test_secure_aggregation import RUN, _bookkept, _reply

from emofl.client.federated.device_key import simulated_device_signer
from emofl.client.federated.keys import load_client_keys
from emofl.client.federated.update_encryption import (
    ReceivedState,
    encrypt_update,
    received_state,
)
from emofl.common.crypto.ckks import CkksError, flatten_state
from emofl.common.crypto.encrypted_update import UpdateOrigin
from emofl.common.crypto.key_files import init_keys
from emofl.common.crypto.server_step import ServerOptimizer, split_state
from emofl.common.model.emotion_net import EmotionNet

SIZES = [1200, 800, 3000]


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    init_keys(path)
    return path


def _local_weights(start: dict[str, torch.Tensor], client: int, global_round: int
                   ) -> dict[str, torch.Tensor]:
    """What client `client` trained from `start`: a fixed drift of its own plus noise."""
    generator = torch.Generator().manual_seed(100 * global_round + client)
    return {name: value + 0.01 * (client + 1) + 0.02 * torch.randn(value.shape,
                                                                    generator=generator)
            for name, value in start.items()}


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(torch.max(torch.abs(a[k].double() - b[k].double())).item() for k in a)


@pytest.mark.parametrize("optimizer", [ServerOptimizer(0.7, 0.9), ServerOptimizer(0.5, 0.0)])
def test_encrypted_state_follows_flowers_fedavgm_round_by_round(key_dir, optimizer):
    torch.manual_seed(0)
    start = EmotionNet(width=8).state_dict()
    keys = load_client_keys(key_dir)
    plain = FedAvgM(server_learning_rate=optimizer.learning_rate,
                    server_momentum=optimizer.momentum)
    plain.current_arrays = ArrayRecord(start)  # what configure_train records in round 1
    model_length = len(flatten_state(start)[0])
    encrypted, _ = _bookkept(key_dir, optimizer.state_length(model_length))
    expected, received = start, ReceivedState(start, None)
    for global_round in (1, 2, 3):
        plain_replies, sealed_replies = [], []
        for client, size in enumerate(SIZES):
            local = _local_weights(expected, client, global_round)
            plain_replies.append(_reply(client, ArrayRecord(local), size))
            signer = simulated_device_signer(key_dir / "devices", client)
            record = encrypt_update(local, size, keys, signer=signer,
                                    origin=UpdateOrigin(RUN, global_round, client),
                                    step=(optimizer, received))
            sealed_replies.append(_reply(client, record, size))
        mean = {k: sum(n * r.content["arrays"].to_torch_state_dict()[k].double()
                       for n, r in zip(SIZES, plain_replies, strict=True)) / sum(SIZES)
                for k in start}
        expected = plain.aggregate_train(global_round, plain_replies)[0].to_torch_state_dict()
        aggregate, _ = encrypted.aggregate_train(global_round, sealed_replies)
        received = received_state(aggregate, start, keys)
        assert _distance(received.weights, expected) <= 1e-5
        assert (received.momentum is not None) == bool(optimizer.momentum)
        assert _distance(expected, mean) > 1e-3  # the server step is not the plain mean


def test_a_state_of_the_wrong_length_is_refused():
    with pytest.raises(CkksError, match="holds 7 values; the model has 3"):
        split_state(np.zeros(7), 3)
    weights, momentum = split_state(np.arange(6.0), 3)
    assert list(weights) == [0, 1, 2] and list(momentum) == [3, 4, 5]
