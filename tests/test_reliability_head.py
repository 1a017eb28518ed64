"""`emofl serve-head`, `emofl classify` and the model files against a hostile sweep: a port in use
or out of range, TLS files that are directories, FIFOs or a key of another certificate, input
paths that are FIFOs, and model cards that ask for impossible or enormous models."""

import json
import os
import socket

import pytest
import torch
from cli_helpers import assert_one_line_error, exported, run_emofl
from test_encrypted_head import self_signed_certificate

from emofl.common.errors import SettingsError, UserError
from emofl.common.model import frame_store, temporal_store
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import load_model, save_model
from emofl.common.model.model_cards import ModelError, card_path
from emofl.common.model.temporal import TemporalModel
from emofl.common.model.temporal_store import load_temporal_model, save_temporal_model
from emofl.server.head.service import start_head_server

# Seconds a command that could block on a FIFO gets before the test calls it hung.
HANG_S = 60


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("head") / "model.pt"
    save_model(EmotionNet(width=4), path, {"note": "reliability test model"})
    return exported(str(path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_second_server_on_a_port_in_use_is_refused(model_file):
    port = free_port()
    first, bound, _ = start_head_server(model_file, "127.0.0.1", port)
    try:
        assert bound == port
        with pytest.raises(UserError, match=f"port {port} is in use"):
            second, _, _ = start_head_server(model_file, "127.0.0.1", port)
            second.stop(0)  # reached only when the port was shared: the test fails above
    finally:
        first.stop(0)


def test_serve_head_on_a_port_in_use_is_a_one_line_error(model_file):
    port = free_port()
    first, _, _ = start_head_server(model_file, "127.0.0.1", port)
    try:
        result = run_emofl("serve-head", "--model", model_file, "--port", str(port),
                           timeout=HANG_S)
        assert result.returncode == 2
        assert_one_line_error(result, f"127.0.0.1:{port}", "in use")
    finally:
        first.stop(0)


@pytest.mark.parametrize("port", [99999, 65536, -1])
def test_ports_out_of_range_are_refused(model_file, port):
    with pytest.raises(SettingsError, match=r"--port must be 0\.\.65535"):
        server, _, _ = start_head_server(model_file, port=port)
        server.stop(0)


def test_serve_head_port_out_of_range_is_a_one_line_error(model_file):
    result = run_emofl("serve-head", "--model", model_file, "--port", "99999", timeout=HANG_S)
    assert result.returncode == 2
    assert_one_line_error(result, "--port must be 0..65535", "99999")


def test_port_zero_still_picks_a_free_port(model_file):
    server, port, _ = start_head_server(model_file, port=0)
    server.stop(0)
    assert 0 < port <= 65535


@pytest.fixture()
def tls_pair(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return self_signed_certificate(tmp_path / "a"), self_signed_certificate(tmp_path / "b")


def test_a_key_of_another_certificate_is_named_as_such(model_file, tls_pair):
    (cert_a, _), (_, key_b) = tls_pair
    with pytest.raises(SettingsError, match="does not match the certificate"):
        start_head_server(model_file, port=0, tls_cert=cert_a, tls_key=key_b)
    result = run_emofl("serve-head", "--model", model_file, "--port", "0", "--tls-cert", cert_a,
                       "--tls-key", key_b, timeout=HANG_S)
    assert result.returncode == 2
    assert_one_line_error(result, "--tls-key", "does not match the certificate")


def fifo(path) -> str:
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("which", ["tls_cert", "tls_key"])
def test_tls_paths_that_are_directories(model_file, tls_pair, tmp_path, which):
    (cert, key), _ = tls_pair
    files = {"tls_cert": cert, "tls_key": key, which: str(tmp_path / "a")}
    option = "--" + which.replace("_", "-")
    with pytest.raises(SettingsError, match=f"{option} is a directory, not a file"):
        start_head_server(model_file, port=0, **files)


@pytest.mark.parametrize("which", ["--tls-cert", "--tls-key"])
def test_tls_paths_that_are_fifos(model_file, tls_pair, tmp_path, which):
    """In a subprocess: reading a FIFO would block the test for ever."""
    (cert, key), _ = tls_pair
    files = {"--tls-cert": cert, "--tls-key": key, which: fifo(tmp_path / "pipe.pem")}
    result = run_emofl("serve-head", "--model", model_file, "--port", "0",
                       *(item for pair in files.items() for item in pair), timeout=HANG_S)
    assert result.returncode == 2
    assert_one_line_error(result, which, "is not a regular file")


@pytest.mark.parametrize("kind, fragment", [("directory", "is a directory"),
                                            ("fifo", "not a regular file")])
def test_a_tls_ca_that_is_not_a_file(model_file, tmp_path, kind, fragment):
    image = tmp_path / "face.png"
    image.write_bytes(b"")
    odd = str(tmp_path) if kind == "directory" else fifo(tmp_path / "ca.pem")
    result = run_emofl("classify", str(image), "--model", model_file, "--encrypted", "--server",
                       "127.0.0.1:1", "--tls-ca", odd, timeout=HANG_S)
    assert result.returncode == 2
    assert_one_line_error(result, "--tls-ca", fragment)


def test_a_tls_ca_that_is_not_a_certificate(model_file, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    result = run_emofl("classify", str(ca), "--model", model_file, "--encrypted", "--server",
                       "127.0.0.1:1", "--tls-ca", str(ca), timeout=HANG_S)
    assert_one_line_error(result, "--tls-ca", "is not a PEM certificate")


def test_a_fifo_image_is_not_reported_missing(model_file, tmp_path):
    result = run_emofl("classify", fifo(tmp_path / "face.png"), "--model", model_file,
                       timeout=HANG_S)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "image is not a regular file" in lines[0] and "not found" not in result.stderr


def test_a_fifo_model_file_or_card_is_not_reported_missing(model_file, tmp_path):
    model = tmp_path / "fifo.pt"
    fifo(model)
    card_path(model).write_text(card_path(model_file).read_text())
    with pytest.raises(ModelError, match="model file is not a regular file"):
        load_model(model)
    other = tmp_path / "real.pt"
    other.write_bytes(open(model_file, "rb").read())
    fifo(card_path(other))
    with pytest.raises(ModelError, match="model card is not a regular file"):
        load_model(other)


def card_with(model_file, tmp_path, architecture) -> str:
    """A copy of the test model whose card's architecture is `architecture`."""
    path = tmp_path / "edited.pt"
    path.write_bytes(open(model_file, "rb").read())
    card = json.loads(card_path(model_file).read_text())
    card["architecture"] = architecture
    card_path(path).write_text(json.dumps(card))
    return str(path)


def never_built(*args, **kwargs):
    raise AssertionError("a model was built from a card that asks for an impossible one")


@pytest.mark.parametrize("change, fragment", [
    ({"width": -3}, "width must be an integer 1..256"),
    ({"width": 100000}, "width must be an integer 1..256"),
    ({"width": 4.0}, "width must be an integer"),
    ({"width": True}, "width must be an integer"),
    ({"feature_dim": 0}, "feature_dim must be an integer 1..1024"),
    ({"feature_dim": 10**9}, "feature_dim must be an integer 1..1024"),
    ({"kind": "resnet"}, "kind must be one of separable, vgg"),
    ({"kind": ["vgg"]}, "kind must be one of"),
    ({"pool": "max"}, "pool must be one of depthwise, average"),
])
def test_a_card_asking_for_an_impossible_frame_model_is_refused_before_building(
        model_file, tmp_path, monkeypatch, change, fragment):
    path = card_with(model_file, tmp_path, {"kind": "separable", "width": 4, "feature_dim": 128,
                                            **change})
    monkeypatch.setattr(frame_store, "EmotionNet", never_built)
    with pytest.raises(ModelError, match=fragment) as refused:
        load_model(path)
    message = str(refused.value)
    assert "\n" not in message and str(card_path(path)) in message


def test_a_card_whose_architecture_is_not_an_object(model_file, tmp_path):
    with pytest.raises(ModelError, match="architecture must be a JSON object"):
        load_model(card_with(model_file, tmp_path, [4, 128]))


def test_a_card_that_is_not_a_json_object(model_file, tmp_path):
    path = card_with(model_file, tmp_path, {})
    card_path(path).write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="not a JSON object"):
        load_model(path)


def test_an_absurd_card_is_a_one_line_error_of_classify(model_file, tmp_path):
    path = card_with(model_file, tmp_path, {"kind": "separable", "width": -3})
    result = run_emofl("classify", model_file, "--model", path, timeout=HANG_S)
    assert result.returncode == 2
    assert_one_line_error(result, "width must be an integer 1..256, got -3")


@pytest.mark.parametrize("hidden_size", [-3, 0, 100000, "32", None])
def test_a_temporal_card_asking_for_an_impossible_model_is_refused(tmp_path, monkeypatch,
                                                                  hidden_size):
    path = tmp_path / "temporal.pt"
    save_temporal_model(TemporalModel(hidden_size=8), path, {})
    card = json.loads(card_path(path).read_text())
    card["architecture"]["hidden_size"] = hidden_size
    card_path(path).write_text(json.dumps(card))
    monkeypatch.setattr(temporal_store, "TemporalModel", never_built)
    with pytest.raises(ModelError, match="hidden_size must be an integer 1..256"):
        load_temporal_model(path)
