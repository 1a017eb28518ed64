"""Device-signed CKKS updates, from an attacker's side: a forged, replayed, modified or
relabelled update is refused with its reason in the round's report and the log, and the server
holds no device's private key, so it cannot sign one itself."""

import dataclasses
import logging

import pytest
import torch

from emofl.client.federated.device_key import key_path, simulated_device_signer
from emofl.common.crypto.ckks import flatten_state
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, init_keys
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.protocol.ckks_records import from_arrays, to_arrays
from emofl.server.federated.keys import load_server_keys
from tests.test_secure_aggregation import RUN, _bookkept, _reply, signed_update


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    init_keys(path)
    return path


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return EmotionNet(width=8).state_dict()


def _round(key_dir, state, global_round, records, caplog):
    """Run one screened aggregation of `records` ([(client id, record)]) in a fresh server that
    first saw each client's own key in round 1; the rejection reasons reported, by reply."""
    strategy, reports = _bookkept(key_dir, len(flatten_state(state)[0]))
    strategy.aggregate_train(1, [_reply(c, signed_update(key_dir, state, 50, c))
                                 for c in (0, 1)])  # pins clients 0 and 1's keys
    strategy.round_offset = global_round - 1
    flower_logger = logging.getLogger("flwr")  # Flower may have turned its propagation off
    flower_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="flwr"):
            aggregate, _ = strategy.aggregate_train(1, [_reply(c, r) for c, r in records])
    finally:
        flower_logger.removeHandler(caplog.handler)
    return aggregate, [c["rejected"] for c in reports[-1].clients]


def _good(key_dir, state, global_round=2):
    return (0, signed_update(key_dir, state, 100, 0, global_round))


def test_an_honest_round_is_accepted(key_dir, state, caplog):
    aggregate, reasons = _round(key_dir, state, 2, [_good(key_dir, state)], caplog)
    assert reasons == [""] and from_arrays(aggregate).num_examples == 100


@pytest.mark.parametrize(("attack", "reason"), [
    ("forged", "not client 1's"),
    ("replayed round", "replayed: signed for round 1, not round 2"),
    ("replayed run", "replayed: signed for run"),
    ("modified chunk", "bad signature"),
    ("modified num_examples", "bad signature"),
    ("another client's update", "signed as client 0, sent as client 1"),
    ("relabelled claim", "bad signature"),
    ("unsigned", "unsigned update"),
])
def test_a_bad_update_is_rejected_with_its_reason_logged(key_dir, state, caplog, attack,
                                                         reason):
    honest = signed_update(key_dir, state, 100, 1, global_round=2)
    update = from_arrays(honest)
    if attack == "forged":  # an outsider's key (or a server's own) signing as client 1
        bad = signed_update(key_dir, state, 100, 1, 2, signer_id=99)
    elif attack == "replayed round":
        bad = signed_update(key_dir, state, 100, 1, global_round=1)
    elif attack == "replayed run":
        bad = signed_update(key_dir, state, 100, 1, 2, run=RUN + 1)
    elif attack == "modified chunk":
        chunk = bytearray(update.chunks[0])
        chunk[len(chunk) // 2] ^= 0x10
        bad = to_arrays(dataclasses.replace(update, chunks=[bytes(chunk), *update.chunks[1:]]))
    elif attack == "modified num_examples":
        bad = to_arrays(dataclasses.replace(update, num_examples=10_000))
    elif attack == "another client's update":  # client 0's signed update, sent as client 1's
        bad = signed_update(key_dir, state, 100, 0, 2)
    elif attack == "relabelled claim":  # client 0's update with its claimed client id edited
        stolen = from_arrays(signed_update(key_dir, state, 100, 0, 2))
        claim = dataclasses.replace(stolen.signature.origin, client_id=1)
        bad = to_arrays(dataclasses.replace(stolen, signature=dataclasses.replace(
            stolen.signature, origin=claim, signer=update.signature.signer)))
    else:
        bad = to_arrays(dataclasses.replace(update, signature=None))
    aggregate, reasons = _round(key_dir, state, 2, [_good(key_dir, state), (1, bad)], caplog)
    assert reasons[0] == "" and reason in reasons[1]
    assert from_arrays(aggregate).num_examples == 100  # the bad update is not in the sum
    assert f"rejected the update of client 1 in round 2: {reasons[1]}" in caplog.text


def test_a_second_update_from_one_client_is_a_duplicate(key_dir, state, caplog):
    first, again = _good(key_dir, state), _good(key_dir, state)
    aggregate, reasons = _round(key_dir, state, 2, [first, again, first], caplog)
    assert reasons[0] == "" and all("duplicate" in r for r in reasons[1:])
    assert from_arrays(aggregate).num_examples == 100


def test_aggregation_sums_only_what_the_screening_accepted(key_dir, state):
    strategy, _ = _bookkept(key_dir, len(flatten_state(state)[0]))
    with pytest.raises(Exception, match="passed this round's screening"):
        strategy.strategy.aggregate_train(1, [_reply(0, signed_update(key_dir, state, 9, 0))])


def test_the_server_holds_no_private_signing_key_of_any_device(key_dir, state, tmp_path):
    """The server's keys and its key book: public context and public verifier keys only."""
    strategy, _ = _bookkept(key_dir, len(flatten_state(state)[0]))
    strategy.aggregate_train(1, [_reply(0, signed_update(key_dir, state, 50, 0))])
    device_pem = key_path(key_dir / "devices", 0).read_bytes()
    book = strategy.strategy.device_key.__self__.path
    server_files = [key_dir / PUBLIC_CONTEXT, *book.parent.iterdir()]
    assert book in server_files and not any(p.suffix == ".key" for p in server_files)
    assert load_server_keys(key_dir).public_context.is_private() is False
    raw = simulated_device_signer(key_dir / "devices", 0)._key.private_bytes_raw()
    for path in server_files:
        data = path.read_bytes()
        assert b"PRIVATE KEY" not in data and raw not in data and device_pem not in data, path
