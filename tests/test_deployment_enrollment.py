"""Deployment without processes: sealing, the server and device folders, requests and bundles.

Bundles here are made the way `emofl enroll` makes them (sealed with `seal`, bound with
`sealing_context`) but without a SuperLink; the loopback tests with real processes are in
tests/test_deployment_federation.py.
"""

import datetime
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtensionOID, NameOID

from emofl.client.device.bundle import ckks_dir, install_bundle
from emofl.client.device.device_folder import init_device, withdrawal
from emofl.client.device.keys import load_sealing_key
from emofl.common.crypto.ckks import context_fingerprint
from emofl.common.crypto.key_files import PUBLIC_CONTEXT, SECRET_CONTEXT, init_keys
from emofl.common.crypto.sealing import SealError, open_sealed, seal
from emofl.common.protocol.enrollment import (
    BUNDLE_FORMAT,
    EnrollmentBundle,
    EnrollmentError,
    EnrollmentRequest,
    b64,
    sealing_context,
)
from emofl.server.deployment.certificates import make_tls_files
from emofl.server.deployment.registry import DeviceRecord, add_device, get_device, next_client_id
from emofl.server.deployment.server_folder import init_server, open_server
from tests.cli_helpers import assert_one_line_error, main_in_process, run_emofl

PRIVATE_KEY_FILES = ("keys/node_key", "keys/sealing.key", "keys/signing.key")


@pytest.fixture(scope="module")
def ckks_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckks")
    init_keys(folder)
    return folder


def _bundle(server_id: str, device, ckks_keys, node_id: int = 7, **changes) -> dict:
    """A bundle as `emofl enroll` writes it for `device`, sealed keys included."""
    request = EnrollmentRequest.read(device / "request.json")
    recipient = load_sealing_key(device).public_key()
    sealed = {name: b64(seal((ckks_keys / name).read_bytes(), recipient,
                             sealing_context(server_id, node_id, name)))
              for name in (SECRET_CONTEXT,)}
    bundle = EnrollmentBundle(
        format=BUNDLE_FORMAT, server_id=server_id, superlink="127.0.0.1:9092",
        ca_certificate="", node_id=node_id, client_id=0,
        node_public_key=request.node_public_key, run_settings={},
        public_context_fingerprint=context_fingerprint((ckks_keys / PUBLIC_CONTEXT).read_bytes()),
        sealed_keys=sealed).to_dict()
    return {**bundle, **changes}


def _ca() -> str:
    return make_tls_files([], "x").ca_cert.decode()


def _expired_ca() -> str:
    """A CA certificate whose validity ended yesterday."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old emofl CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server") / "srv"
    init_server(root, ["fl.example.org", "10.0.0.5"])
    return root


@pytest.fixture()
def device(tmp_path):
    init_device(tmp_path / "dev", name="laptop", epsilon=4.0, delta=1e-5)
    return tmp_path / "dev"


def test_sealing_opens_only_with_the_key_and_context_it_was_sealed_to():
    key = X25519PrivateKey.generate()
    sealed = seal(b"secret context", key.public_key(), b"server A node 1")
    assert open_sealed(sealed, key, b"server A node 1") == b"secret context"
    with pytest.raises(SealError):
        open_sealed(sealed, key, b"server B node 1")
    with pytest.raises(SealError):
        open_sealed(sealed, X25519PrivateKey.generate(), b"server A node 1")
    for index in (len(sealed) // 2, len(sealed) - 1, 20):
        tampered = bytearray(sealed)
        tampered[index] ^= 1
        with pytest.raises(SealError):
            open_sealed(bytes(tampered), key, b"server A node 1")


def test_server_init_makes_a_ca_and_a_certificate_for_every_name(server):
    ca = x509.load_pem_x509_certificate((server / "tls/ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((server / "tls/server.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert {str(n.value) for n in names} == {"fl.example.org", "10.0.0.5", "localhost",
                                             "127.0.0.1"}
    for key in ("tls/ca.key", "tls/server.key"):
        assert stat.S_IMODE(os.stat(server / key).st_mode) == 0o600
    assert (server / "registry.sqlite").is_file() and (server / "flwr").is_dir()


def test_a_server_folder_given_relative_is_used_absolute(server, monkeypatch):
    monkeypatch.chdir(server.parent)
    assert open_server(server.name).root == server.resolve()  # helper processes run inside it


def test_server_init_never_overwrites(server, capsys):
    before = (server / "tls/ca.pem").read_bytes()
    code, err = main_in_process(capsys, "server", "init", "--dir", str(server))
    assert code == 2 and len(err) == 1 and "not empty" in err[0]
    assert (server / "tls/ca.pem").read_bytes() == before


def test_device_init_keeps_private_keys_private_and_the_request_public(device, capsys):
    for name in PRIVATE_KEY_FILES:
        assert stat.S_IMODE(os.stat(device / name).st_mode) == 0o600
    text = (device / "request.json").read_text()
    request = EnrollmentRequest.from_dict(json.loads(text))
    assert "PRIVATE" not in text and request.consent["epsilon"] == 4.0
    assert request.node_public_key.startswith("ecdsa-sha2-nistp384 ")
    code, err = main_in_process(capsys, "device", "init", "--dir", str(device))
    assert code == 2 and "already holds a device" in err[0]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("node_public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "OpenSSH public key"),
    ("sealing_public_key", "bm90IGEga2V5", "X25519"),
    ("signing_public_key", "***", "base64"),
    ("consent", {"shares": "x", "epsilon": -1, "delta": 1e-5, "given_at": ""}, "epsilon"),
])
def test_a_request_with_a_malformed_key_or_consent_is_refused(device, field, value, message):
    data = json.loads((device / "request.json").read_text())
    with pytest.raises(EnrollmentError, match=message):
        EnrollmentRequest.from_dict({**data, field: value})


def test_enroll_refuses_a_malformed_request_in_one_line(server, tmp_path):
    (tmp_path / "request.json").write_text('{"format": "emofl-enrollment-request/1"}')
    result = run_emofl("enroll", "--dir", str(server), str(tmp_path / "request.json"),
                       "--out", str(tmp_path / "bundle.json"), timeout=60)
    assert result.returncode == 2
    assert_one_line_error(result, "the enrollment request lacks")
    assert not (tmp_path / "bundle.json").exists()


def test_bundle_opens_on_its_device_and_keeps_the_keys_private(device, ckks_keys, tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps(_bundle("s1", device, ckks_keys,
                                                             ca_certificate=_ca())))
    install_bundle(device, tmp_path / "bundle.json")
    opened = ckks_dir(device) / SECRET_CONTEXT
    assert opened.read_bytes() == (ckks_keys / SECRET_CONTEXT).read_bytes()
    assert stat.S_IMODE(os.stat(opened).st_mode) == 0o600


def test_bad_bundles_are_refused_in_one_line(device, ckks_keys, tmp_path, capsys):
    ca = _ca()
    good = _bundle("s1", device, ckks_keys, ca_certificate=ca)
    other_device = tmp_path / "other"
    init_device(other_device, name="other", epsilon=8.0, delta=1e-5)
    tampered = dict(good, sealed_keys=dict(good["sealed_keys"]))
    raw = bytearray(tampered["sealed_keys"][SECRET_CONTEXT].encode())
    raw[100] = ord("A") if raw[100] != ord("A") else ord("B")
    tampered["sealed_keys"][SECRET_CONTEXT] = raw.decode()
    cases = {
        "tampered": (device, tampered, "does not open"),
        "moved": (device, dict(good, node_id=8), "does not open"),
        "another device": (other_device, good, "another device"),
        "not a CA": (device, dict(good, ca_certificate="junk"), "not a CA certificate"),
        "expired CA": (device, dict(good, ca_certificate=_expired_ca()), "not valid now"),
    }
    for name, (target, bundle, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bundle))
        code, err = main_in_process(capsys, "client", "--dir", str(target), "--bundle",
                                    str(path), "--data", "synthetic")
        assert code == 2 and len(err) == 1 and message in err[0], (name, err)
    assert not (device / "bundle.json").exists()
    (tmp_path / "good.json").write_text(json.dumps(good))
    install_bundle(device, tmp_path / "good.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps(_bundle("s2", device, ckks_keys,
                                                                ca_certificate=ca)))
    code, err = main_in_process(capsys, "client", "--dir", str(device), "--bundle",
                                str(tmp_path / "elsewhere.json"), "--data", "synthetic")
    assert code == 2 and "another server" in err[0]
    (tmp_path / "no-faces").mkdir()
    code, err = main_in_process(capsys, "client", "--dir", str(device), "--data",
                                str(tmp_path / "no-faces"))
    assert code == 2 and len(err) == 1 and "no-faces" in err[0], err


def test_a_folder_without_device_keys_is_refused_in_one_line(device, tmp_path, capsys):
    (device / "keys/sealing.key").unlink()
    code, err = main_in_process(capsys, "client", "--dir", str(device), "--bundle",
                                str(tmp_path / "none.json"), "--data", "synthetic")
    assert code == 2 and len(err) == 1
    code, err = main_in_process(capsys, "client", "--dir", str(tmp_path / "empty"),
                                "--data", "synthetic")
    assert code == 2 and "not a device folder" in err[0]


def test_withdrawal_is_recorded_and_kept(device, capsys):
    assert withdrawal(device) == ""
    code, _ = main_in_process(capsys, "device", "withdraw", "--dir", str(device))
    assert code == 0 and withdrawal(device).startswith("consent withdrawn at ")


def test_registry_gives_each_device_its_own_client_id(server):
    record = DeviceRecord(node_id=2**64 - 5, client_id=next_client_id(server / "registry.sqlite"),
                          device_name="d", node_public_key="k1", sealing_public_key="s",
                          signing_public_key="g1", consent="{}", enrolled_at="now")
    add_device(server / "registry.sqlite", record)
    assert get_device(server / "registry.sqlite", 2**64 - 5) == record
    assert next_client_id(server / "registry.sqlite") == record.client_id + 1
