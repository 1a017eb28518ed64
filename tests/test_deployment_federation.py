"""A deployed federation on loopback, with real processes: `emofl server start` (SuperLink and
the Fleet-only nginx proxy), `emofl enroll`, `emofl client` (SuperNodes) and `emofl run`.

Every port is a free random one on 127.0.0.1, every wait is bounded, and every process started
here is stopped (SIGTERM, then SIGKILL of its process group) whatever the outcome.
"""

import json
import os
import signal
from pathlib import Path

import pytest

from emofl.client.device.bundle import install_bundle
from emofl.common import process_table
from emofl.common.crypto.ckks import CkksError, load_context
from emofl.common.crypto.key_files import SECRET_CONTEXT, init_keys
from emofl.common.crypto.seal_bytes import to_bytes
from emofl.common.processes import free_port
from emofl.server.deployment.enrollment import revoke
from emofl.server.deployment.flower_cli import FlowerCliError, flwr_json, write_cli_config
from emofl.server.deployment.server_folder import ServerFolder, open_server
from emofl.server.deployment.server_start import https_status
from tests.cli_helpers import assert_one_line_error, run_emofl
from tests.deployment_helpers import (
    READY_S,
    enroll_device,
    make_device,
    run_setting_args,
    start,
    start_server,
    stop,
    wait_for,
)

pytestmark = pytest.mark.deployment


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("deployment")
    root = base / "srv"
    assert run_emofl("server", "init", "--dir", str(root), timeout=60).returncode == 0
    port = free_port()
    process = start_server(root, port, base / "server.log")
    try:
        yield open_server(root), port, base
    finally:
        stop(process)
    assert not (root / "endpoint.json").exists()


def test_the_device_port_refuses_the_control_api_and_forwards_the_fleet_api(server, tmp_path):
    folder, port, _ = server
    assert https_status(folder, "127.0.0.1", port, "/v1/control/list-nodes") == 403
    assert https_status(folder, "127.0.0.1", port, "/v1/control/start-run") == 403
    assert https_status(folder, "127.0.0.1", port, "/v1/runtime/pull-messages") == 403
    # The Fleet path reaches the SuperLink, which answers an empty body with 415.
    assert https_status(folder, "127.0.0.1", port, "/v1/fleet/get-run") == 415
    device = make_device(tmp_path, "cli-device")
    result = run_emofl("enroll", "--dir", str(folder.root), str(device / "request.json"),
                       "--out", str(tmp_path / "bundle.json"), timeout=120)
    assert result.returncode == 0, result.stderr
    node_id = json.loads(result.stdout)["node_id"]
    listed = flwr_json(folder, "supernode", "list")["nodes"]  # the operator, on loopback
    assert str(node_id) in [str(node["node-id"]) for node in listed]
    assert run_emofl("revoke", "--dir", str(folder.root), str(node_id),
                     timeout=60).returncode == 0
    outsider = ServerFolder(root=tmp_path / "outsider", server_id="x", hostnames=("127.0.0.1",))
    (outsider.tls).mkdir(parents=True)
    outsider.ca_cert.write_bytes(folder.ca_cert.read_bytes())
    write_cli_config(outsider, f"127.0.0.1:{port}")
    with pytest.raises(FlowerCliError):
        flwr_json(outsider, "supernode", "list", timeout=60)


def test_bad_starts_are_one_line_errors(server, tmp_path):
    folder, port, _ = server
    again = run_emofl("server", "start", "--dir", str(folder.root), "--port", str(port + 1),
                      timeout=60)
    assert_one_line_error(again, "already running")
    assert run_emofl("server", "init", "--dir", str(tmp_path / "other"), timeout=60).returncode == 0
    taken = run_emofl("server", "start", "--dir", str(tmp_path / "other"), "--port", str(port),
                      "--bind", "127.0.0.1", timeout=60)
    assert_one_line_error(taken, f"port {port}", "in use")
    device = make_device(tmp_path, "misled")
    bundle = json.loads(Path(enroll_device(folder, device)["bundle"]).read_text())
    bundle["ca_certificate"] = (tmp_path / "other/tls/ca.pem").read_text()  # another CA
    (tmp_path / "misled.json").write_text(json.dumps(bundle))
    misled = run_emofl("client", "--dir", str(device), "--bundle", str(tmp_path / "misled.json"),
                       "--data", "synthetic", timeout=60)
    assert_one_line_error(misled, "is not the one the bundle's CA certifies")


def test_three_devices_train_two_rounds_and_outsiders_are_refused(server):
    folder, _, base = server
    devices = [make_device(base, f"dev{i}", epsilon=8.0 if i else 4.0) for i in range(3)]
    enrolled = [enroll_device(folder, device) for device in devices]
    revoked, stranger = make_device(base, "revoked"), make_device(base, "stranger")
    revoke(folder, enroll_device(folder, revoked)["node_id"])
    forged = json.loads(Path(enrolled[0]["bundle"]).read_text())
    forged["node_public_key"] = (stranger / "keys/node_key.pub").read_text().strip()
    Path(base / "stranger.bundle.json").write_text(json.dumps(forged))
    clients = [start("client", "--dir", str(d), "--bundle", str(base / f"{d.name}.bundle.json"),
                      "--data", "synthetic", log=base / f"{d.name}.log")
               for d in [*devices, revoked, stranger]]
    try:
        run = run_emofl("run", "--dir", str(folder.root), "--rounds", "2", "--min-devices", "3",
                        *run_setting_args(),
                        "--timeout", "400", timeout=450)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["status"] == "finished:completed"
        for outsider in clients[3:]:
            assert outsider.wait(timeout=60) == 2
    finally:
        for client in clients:
            stop(client)
    for name in ("revoked", "stranger"):
        assert "Failed to activate" in (base / f"{name}.log").read_text(), name
    rounds = json.loads((folder.run_dir / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    ids = [device["client_id"] for device in enrolled]
    for entry in rounds:
        assert sorted(c["id"] for c in entry["clients"]) == sorted(ids)
        assert entry["aggregated"] == 3
    spent = {c["id"]: c["epsilon"] for c in rounds[-1]["clients"]}
    assert spent[ids[0]] <= 4.0 < spent[ids[1]] <= 8.0  # dev0 consented to ε = 4 only
    assert (folder.run_dir / "model_card.json").is_file()
    assert not (folder.run_dir / "clients").exists()
    for device in devices:
        assert list((device / "state").glob("client_*.ledger.sqlite"))


def test_enrollment_seals_the_ckks_secret_and_the_server_folder_holds_none(server, tmp_path):
    folder, _, base = server
    init_keys(tmp_path / "keys")
    device = make_device(base, "ckks-device")
    enroll_device(folder, device, tmp_path / "keys")
    bundle_file = base / "ckks-device.bundle.json"
    assert install_bundle(device, bundle_file).sealed_keys
    secret = (tmp_path / "keys" / SECRET_CONTEXT).read_bytes()
    assert (device / "ckks" / SECRET_CONTEXT).read_bytes() == secret
    secret_key = to_bytes(load_context(secret).secret_key().data)
    probe = secret_key[len(secret_key) // 2:len(secret_key) // 2 + 64]  # past SEAL's header
    assert probe in secret and probe not in bundle_file.read_bytes()
    files = sorted(p for p in folder.root.rglob("*") if p.is_file())
    assert folder.keys / "public_context.bin" in files
    for path in files:
        data = path.read_bytes()
        assert probe not in data, path
        with pytest.raises(CkksError):
            load_context(data, require_secret=True)


def _supernodes(parent: int) -> dict[int, str]:
    """The flower-supernode processes `parent` started: pid: start time."""
    found = {}
    for pid, started in process_table.descendants(process_table.processes(), parent).items():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"flower-supernode" in command:
            found[pid] = started
    return found


def test_a_killed_client_takes_its_supernode_with_it(server, tmp_path):
    """SIGKILL leaves `emofl client` no chance to stop its SuperNode; the SuperNode must not
    go on training with the device's faces after its owner stopped the client."""
    folder, _, _ = server
    device = make_device(tmp_path, "killed")
    enroll_device(folder, device)
    client = start("client", "--dir", str(device), "--bundle",
                   str(tmp_path / "killed.bundle.json"), "--data", "synthetic",
                   log=tmp_path / "killed.log")
    supernode: dict[int, str] = {}
    try:
        wait_for(lambda: supernode.update(_supernodes(client.pid)) or supernode,
                 "the SuperNode started", READY_S, client)
        os.kill(client.pid, signal.SIGKILL)
        wait_for(lambda: not any(process_table.is_running(pid, started)
                                 for pid, started in supernode.items()),
                 "the SuperNode stopped with its client", 30)
    finally:
        stop(client)
        process_table.kill_those_still_running(supernode)
