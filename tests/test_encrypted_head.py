"""Encrypted head inference over gRPC: the packed layout, agreement with plaintext, what the
returned ciphertext may hold, every refusal the service owes a bad request, and TLS."""

import datetime
import ipaddress

import grpc
import numpy as np
import pytest
import torch
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emofl.client.inference.encrypted_head_client import EncryptedHeadClient, HeadServiceError
from emofl.client.inference.head_encryption import DeviceHeadKeys
from emofl.common.crypto.packed_head import PackedLayout, pack_features, pack_weights, unpack_logits
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import backbone_sha256, save_model
from emofl.common.protocol import head_service_pb2 as pb
from emofl.common.protocol import head_service_pb2_grpc as pb_grpc
from emofl.server.head.service import ServiceLimits, start_head_server
from emofl.server.head.sessions import SessionStore, UnknownSessionError


def expected_slots(logits: np.ndarray, layout: PackedLayout) -> np.ndarray:
    """The only slot vector a reply may decrypt to: each logit at its (face, class) place,
    repeated across the ciphertext, and zeros for padding faces and classes."""
    block = np.zeros((layout.faces_padded, layout.classes_padded))
    block[: layout.faces, : layout.num_classes] = logits
    return np.tile(block.ravel(), layout.slots // layout.stride)


@pytest.mark.parametrize("faces", [1, 2, 3, 7, 9, 16, 33, 64])
@pytest.mark.parametrize("feature_dim", [128, 100])
def test_packed_layout_computes_the_head_in_plaintext(faces, feature_dim):
    """Simulate the server's steps on the slot vectors: every slot must be a full logit."""
    rng = np.random.default_rng(faces)
    layout = PackedLayout(faces, feature_dim, 7, 4096)
    x, w, b = rng.normal(size=(faces, feature_dim)), rng.normal(size=(7, feature_dim)), \
        rng.normal(size=7)
    packed_w, packed_b = pack_weights(w, b, layout)
    total = (pack_features(x, layout) * packed_w).sum(axis=0)
    for step in layout.rotation_steps:
        total = total + np.roll(total, -step)
    total += packed_b
    np.testing.assert_allclose(total, expected_slots(x @ w.T + b, layout), atol=1e-9)
    np.testing.assert_allclose(unpack_logits(total, layout), x @ w.T + b, atol=1e-9)


def test_layout_refuses_more_faces_than_slots():
    with pytest.raises(ValueError, match="do not fit"):
        PackedLayout(1024, 128, 7, 4096)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("head") / "model.pt"
    save_model(EmotionNet(width=4), path, {"note": "encrypted-head test model"})
    return path


@pytest.fixture(scope="module")
def model(model_file):
    from emofl.common.model.frame_store import load_model

    return load_model(model_file)[0]


@pytest.fixture(scope="module")
def service(model_file):
    server, port, svc = start_head_server(str(model_file), port=0,
                                          limits=ServiceLimits(max_message_bytes=4 * 2**20))
    yield f"127.0.0.1:{port}", svc
    server.stop(0)


@pytest.fixture(scope="module")
def client(service, model):
    with EncryptedHeadClient(service[0], backbone_sha256(model)) as head:
        yield head


def features_and_logits(model, n, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        features = model.features(torch.randn(n, 1, 48, 48))
        logits = model.head(features)
    return features.double().numpy(), logits.double().numpy()


@pytest.mark.parametrize("faces", [1, 9, 70])
def test_encrypted_logits_agree_with_plaintext(client, model, faces):
    features, logits = features_and_logits(model, faces, seed=faces)
    got = client.logits(features)
    assert np.abs(got - logits).max() < 1e-3
    assert (got.argmax(axis=1) == logits.argmax(axis=1)).all()


def raw_stub(address):
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 2**25)])
    return pb_grpc.EncryptedHeadStub(channel)


def test_reply_holds_only_logits(service, client, model):
    """Decrypt every slot of a reply: nothing but logits (or zeros), no partial sums of x*W."""
    features, logits = features_and_logits(model, 3, seed=5)
    layout = PackedLayout(3, 128, 7, client.keys.params.slots)
    reply = raw_stub(service[0]).Classify(pb.ClassifyRequest(
        session_id=client.session_id, num_faces=3,
        packed_features=client.keys.encrypt_features(features, layout)))
    slots = client.keys.decrypt_slots(reply.logits)
    assert np.abs(slots - expected_slots(logits, layout)).max() < 1e-4
    # The check can see a partial sum: half a logit's products differ from the whole by far
    # more than the tolerance.
    weight = model.head.weight.detach().double().numpy()
    assert abs(features[0, :64] @ weight[0, :64] - (features[0] @ weight[0])) > 1e-2


def assert_refused(call, code, fragment):
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    assert fragment in info.value.details()


def test_malformed_requests_get_clear_statuses_and_the_service_survives(service, client, model):
    stub = raw_stub(service[0])
    features, logits = features_and_logits(model, 2)
    layout = PackedLayout(2, 128, 7, client.keys.params.slots)
    blobs = client.keys.encrypt_features(features, layout)
    sid = client.session_id
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id="nope", num_faces=2, packed_features=blobs)), grpc.StatusCode.NOT_FOUND,
        "unknown or expired session")
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id=sid, num_faces=2, packed_features=[b"garbage"])), invalid,
        "packed_features[0] is not a valid SEAL object")
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id=sid, num_faces=9, packed_features=blobs)), invalid, "need 4 ciphertexts")
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id=sid, num_faces=0, packed_features=blobs)), invalid, "num_faces must be")
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id=sid, num_faces=65, packed_features=blobs)), invalid, "num_faces must be")
    truncated = blobs[0][: len(blobs[0]) // 2]
    assert_refused(lambda: stub.Classify(pb.ClassifyRequest(
        session_id=sid, num_faces=2, packed_features=[truncated])), invalid, "not a valid")
    oversized = pb.ClassifyRequest(session_id=sid, num_faces=2,
                                   packed_features=[bytes(5 * 2**20)])
    assert_refused(lambda: stub.Classify(oversized), grpc.StatusCode.RESOURCE_EXHAUSTED, "")
    assert_refused(lambda: stub.OpenSession(pb.OpenSessionRequest(
        encryption_parameters=b"junk", galois_keys=b"junk")), invalid,
        "encryption parameters are not valid")
    # Still serving, and the session still works.
    assert np.abs(client.logits(features) - logits).max() < 1e-3


def test_keys_without_the_needed_rotations_are_refused(service):
    import tenseal.sealapi as seal

    from emofl.common.crypto import seal_bytes
    from emofl.common.crypto.head_ckks import HEAD_PARAMS, galois_elements

    keys = DeviceHeadKeys(7)
    parameters, _ = keys.public_material()
    partial = seal.KeyGenerator(keys.context).create_galois_keys(
        galois_elements([8, 16], HEAD_PARAMS))
    assert_refused(lambda: raw_stub(service[0]).OpenSession(pb.OpenSessionRequest(
        encryption_parameters=parameters, galois_keys=seal_bytes.to_bytes(partial))),
        grpc.StatusCode.INVALID_ARGUMENT, "lack the rotations")


def test_other_parameters_are_refused(service):
    from emofl.common.crypto.head_ckks import HeadCkksParams

    keys = DeviceHeadKeys(7, HeadCkksParams(4096, (40, 30, 39), 30))
    parameters, galois = keys.public_material()
    assert_refused(lambda: raw_stub(service[0]).OpenSession(pb.OpenSessionRequest(
        encryption_parameters=parameters, galois_keys=galois)),
        grpc.StatusCode.INVALID_ARGUMENT, "differ from the ones Describe advertises")


def test_session_limit_and_mismatched_backbone(model_file, model):
    server, port, _ = start_head_server(str(model_file), port=0,
                                        limits=ServiceLimits(max_sessions=1))
    try:
        address = f"127.0.0.1:{port}"
        with EncryptedHeadClient(address, backbone_sha256(model)):
            with pytest.raises(HeadServiceError, match="RESOURCE_EXHAUSTED"):
                EncryptedHeadClient(address, backbone_sha256(model))
        with pytest.raises(HeadServiceError, match="another backbone"):
            EncryptedHeadClient(address, "0" * 64)
    finally:
        server.stop(0)


def test_sessions_expire_when_idle():
    now = [0.0]
    store = SessionStore(max_sessions=2, idle_timeout_s=10, clock=lambda: now[0])
    sid = store.open(galois_keys=None)
    now[0] = 5.0
    assert store.get(sid).last_used == 5.0
    now[0] = 16.0
    with pytest.raises(UnknownSessionError):
        store.get(sid)
    assert len(store) == 0


def self_signed_certificate(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_tls_on_loopback(tmp_path, model_file, model):
    cert, key = self_signed_certificate(tmp_path)
    server, port, _ = start_head_server(str(model_file), port=0, tls_cert=cert, tls_key=key)
    try:
        features, logits = features_and_logits(model, 4)
        with EncryptedHeadClient(f"localhost:{port}", backbone_sha256(model), tls_ca=cert) as c:
            assert np.abs(c.logits(features) - logits).max() < 1e-3
        with pytest.raises(HeadServiceError, match="UNAVAILABLE"):
            EncryptedHeadClient(f"localhost:{port}", backbone_sha256(model), timeout_s=3)
    finally:
        server.stop(0)


def test_tls_needs_a_real_certificate(tmp_path, model_file):
    _, key = self_signed_certificate(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValueError, match="is not a PEM certificate"):
        start_head_server(str(model_file), port=0, tls_cert=str(bad), tls_key=key)


def test_a_session_runs_one_request_at_a_time(service, client, model):
    features, _ = features_and_logits(model, 1)
    layout = PackedLayout(1, 128, 7, client.keys.params.slots)
    request = pb.ClassifyRequest(session_id=client.session_id, num_faces=1,
                                 packed_features=client.keys.encrypt_features(features, layout))
    session = service[1].sessions.get(client.session_id)
    with session.lock:  # as if another request of this session were being evaluated
        assert_refused(lambda: raw_stub(service[0]).Classify(request),
                       grpc.StatusCode.RESOURCE_EXHAUSTED, "already has a request in flight")
    assert raw_stub(service[0]).Classify(request).logits
