"""Devices that attack a deployed CKKS federation from inside: one sends, in round 2, an update
signed for round 1 (a replay), one signs its updates with a key that is not its enrolled one
(a forgery). Each is an enrolled device running emofl's own ClientApp with one function
replaced, loaded through `sitecustomize` on its PYTHONPATH — what the owner of a device can do
to the code on it. The server must refuse exactly those updates, say why in metrics.json and
its log, and aggregate the honest device's.

Real processes on loopback (SuperLink, nginx, three SuperNodes), random free ports, bounded
waits; every process is stopped whatever the outcome.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from emofl.common.crypto.key_files import init_keys
from emofl.common.processes import free_port
from emofl.server.deployment.flower_cli import flower_env, flwr_command
from emofl.server.deployment.server_folder import open_server
from tests.cli_helpers import run_emofl
from tests.deployment_helpers import (
    enroll_device,
    make_device,
    run_setting_args,
    start,
    start_server,
    stop,
)

pytestmark = pytest.mark.deployment

_PATCHED = "import emofl.client.device.client_app as device_app\n"
ATTACKS = {
    # Sign round r's update as if it were round r - 1's: what a device resending its earlier
    # signed update presents to the server (the claimed origin is checked first).
    "replayer": _PATCHED + """
from dataclasses import replace
honest = device_app.update_origin
def replayed(msg, context, client_id):
    origin = honest(msg, context, client_id)
    return replace(origin, global_round=max(1, origin.global_round - 1))
device_app.update_origin = replayed
""",
    # Sign every update with a fresh key instead of the enrolled one.
    "forger": _PATCHED + """
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from emofl.common.privacy.signing import Ed25519Signer
honest = device_app._outgoing
def forged(update, keys, signer, origin, step):
    fresh = Ed25519Signer(signer.name, Ed25519PrivateKey.generate())
    return honest(update, keys, fresh, origin, step)
device_app._outgoing = forged
""",
}


def _attacker_env(base: Path, attack: str) -> dict[str, str]:
    folder = base / f"{attack}-site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(ATTACKS[attack])
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_replayed_and_forged_updates_are_refused_with_their_reasons(tmp_path):
    root = tmp_path / "srv"
    assert run_emofl("server", "init", "--dir", str(root), timeout=60).returncode == 0
    folder, port = open_server(root), free_port()
    init_keys(tmp_path / "keys")
    processes = [start_server(root, port, tmp_path / "server.log")]
    try:
        names = ("honest", "replayer", "forger")
        devices = [make_device(tmp_path, name) for name in names]
        ids = dict(zip(names, (enroll_device(folder, d, tmp_path / "keys")["client_id"]
                               for d in devices), strict=True))
        for name, device in zip(names, devices, strict=True):
            env = None if name == "honest" else _attacker_env(tmp_path, name)
            processes.append(start("client", "--dir", str(device), "--bundle",
                                   str(tmp_path / f"{name}.bundle.json"), "--data", "synthetic",
                                   log=tmp_path / f"{name}.log", env=env))
        run = run_emofl("run", "--dir", str(root), "--rounds", "2", "--min-devices", "3",
                        *run_setting_args(), "--timeout", "500", timeout=550)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["status"] == "finished:completed"
        run_log = subprocess.run(  # the ServerApp's log, as the operator reads it
            [flwr_command(), "log", str(json.loads(run.stdout)["run_id"]), "--show"],
            capture_output=True, text=True, timeout=120, env=flower_env(folder.flwr_home),
            cwd=root).stdout
    finally:
        for process in reversed(processes):
            stop(process)
    rounds = json.loads((folder.run_dir / "metrics.json").read_text())["rounds"]
    rejected = [{c["id"]: c["rejected"] for c in r["clients"]} for r in rounds]
    assert rejected[0][ids["honest"]] == rejected[1][ids["honest"]] == ""
    assert rejected[0][ids["replayer"]] == ""  # round 1 signed for round 1: nothing to replay
    assert rejected[1][ids["replayer"]] == "replayed: signed for round 1, not round 2"
    for entry in rejected:
        assert entry[ids["forger"]] == f"signed with a key that is not client {ids['forger']}'s"
    assert [r["aggregated"] for r in rounds] == [2, 1]
    assert "replayed: signed for round 1, not round 2" in run_log
    assert f"signed with a key that is not client {ids['forger']}'s" in run_log
