"""A deployed federation that loses a device mid-round and then its server: the round finishes
with the devices left, the SuperLink restarts with its registrations, and `emofl run --resume`
finishes the run from emofl's checkpoint, each device's ε still cumulative.

Real processes on loopback (SuperLink, nginx, three SuperNodes), random free ports, bounded
waits; every process is stopped whatever the outcome.
"""

import json
import os
import signal
from pathlib import Path

import pytest

from emofl.common import process_table
from emofl.common.processes import free_port
from emofl.server.deployment.flower_cli import flwr_json
from emofl.server.deployment.server_folder import open_server
from tests.cli_helpers import run_emofl
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

# Flower notices a SIGKILLed SuperNode by its missing heartbeats after ~60 s.
NODE_LOST_S = 240


def _rounds(run_dir: Path) -> list[dict]:
    metrics = run_dir / "metrics.json"
    return json.loads(metrics.read_text())["rounds"] if metrics.exists() else []


def _crash(client) -> None:
    """SIGKILL a device's `emofl client` and everything it started (its SuperNode runs in a
    session of its own): the device is gone at once, as in a power cut."""
    family = process_table.descendants(process_table.processes(), client.pid)
    os.killpg(client.pid, signal.SIGKILL)
    for pid in family:
        process_table.kill(pid)


def test_a_killed_device_and_a_restarted_server_do_not_lose_the_run(tmp_path):
    root = tmp_path / "srv"
    assert run_emofl("server", "init", "--dir", str(root), timeout=60).returncode == 0
    folder, port = open_server(root), free_port()
    processes = [server := start_server(root, port, tmp_path / "server-1.log")]
    try:
        devices = [make_device(tmp_path, f"dev{i}") for i in range(3)]
        ids = [enroll_device(folder, device)["client_id"] for device in devices]
        clients = [start("client", "--dir", str(d), "--bundle",
                         str(tmp_path / f"{d.name}.bundle.json"), "--data", "synthetic",
                         log=tmp_path / f"{d.name}.log") for d in devices]
        processes += clients
        # A fixed σ = 4 makes every charge small: a device may have been charged for round 3
        # before the SuperLink went down (that charge stands: its ledger counts it), and the
        # resumed round 3 must still fit in its budget for the run to be finished.
        run_args = ("run", "--dir", str(root), "--rounds", "3", "--min-devices", "2",
                    *run_setting_args(), "--set", "noise-multiplier=4", "--timeout", "600")
        first = start(*run_args, log=tmp_path / "run-1.log")
        processes.append(first)

        wait_for(lambda: len(_rounds(folder.run_dir)) >= 1, "round 1", READY_S * 2, first)
        _crash(clients[2])  # round 2 is under way: dev2 vanishes
        wait_for(lambda: len(_rounds(folder.run_dir)) >= 2, "round 2 without dev2",
                 NODE_LOST_S, first)
        round_1, round_2 = _rounds(folder.run_dir)
        assert round_1["aggregated"] == 3
        assert round_2["aggregated"] == 2
        assert sorted(c["id"] for c in round_2["clients"]) == sorted(ids[:2])

        stop(server)  # the SuperLink goes down with round 3 in progress or about to start
        assert first.wait(timeout=120) != 0  # the run did not finish
        assert len(_rounds(folder.run_dir)) == 2
        server = start_server(root, port, tmp_path / "server-2.log")
        processes.append(server)
        listed = {str(n["node-id"]) for n in flwr_json(folder, "supernode", "list")["nodes"]}
        enrolled = json.loads((tmp_path / "dev0.bundle.json").read_text())["node_id"]
        assert str(enrolled) in listed  # registrations survived the restart (--database)

        resumed = run_emofl(*run_args, "--resume", timeout=650)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["status"] == "finished:completed"
    finally:
        for process in reversed(processes):
            stop(process)
    rounds = _rounds(folder.run_dir)
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert rounds[2]["aggregated"] == 2
    spent = [{c["id"]: c["epsilon"] for c in r["clients"]} for r in rounds]
    for client in ids[:2]:  # cumulative across the restart: round 3 spends on top of round 2
        assert spent[0][client] < spent[1][client] < spent[2][client] <= 8.0
    assert (folder.run_dir / "model_card.json").is_file()
