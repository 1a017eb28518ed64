"""The operator's Flower CLI calls, with their settings kept inside the server folder.

Every `flwr` call runs with `FLWR_HOME=DIR/flwr` (Flower's `get_flwr_home` reads it), whose
`config.toml` names one SuperLink connection, `emofl`: the SuperLink's loopback address (the
Control API is reachable there only) and the federation's CA. Nothing is read from or written
to `~/.flwr`. Calls use `--format json` and are bounded in time; a failure becomes one
`FlowerCliError` line with Flower's own message.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.storage import atomic_io
from emofl.server.deployment.server_folder import ServerFolder

CONNECTION = "emofl"
CLI_TIMEOUT_S = 120


class FlowerCliError(UserError):
    """A Flower CLI call that failed (the SuperLink down, a node unknown); Flower's message."""


def write_cli_config(folder: ServerFolder, control_address: str) -> Path:
    """Point the Flower CLI of `folder` at the SuperLink's Control API on `control_address`."""
    text = (f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "{control_address}"\nroot-certificates = "{folder.ca_cert.resolve()}"\n')
    path = folder.flwr_home / "config.toml"
    atomic_io.write_bytes(path, text.encode())
    return path


def flower_env(flwr_home: Path) -> dict[str, str]:
    """The environment for a Flower process: FLWR_HOME set, this Python's scripts on PATH (the
    SuperLink starts `flower-superexec` and `flwr-serverapp` by name)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "FLWR_HOME": str(flwr_home.resolve()),
            "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def flwr_command() -> str:
    return str(Path(sys.executable).parent / "flwr")


def flwr_json(folder: ServerFolder, *args: str, timeout: float = CLI_TIMEOUT_S) -> dict:
    """Run `flwr ARGS --format json` for `folder`; its JSON answer, FlowerCliError on failure."""
    command = [flwr_command(), *args, "--format", "json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=flower_env(folder.flwr_home), cwd=folder.root)
    except subprocess.TimeoutExpired:
        raise FlowerCliError(f"`flwr {args[0]}` gave no answer within {timeout:.0f} s; is the "
                             "server started (`emofl server start`)?") from None
    try:
        answer = json.loads(done.stdout[done.stdout.find("{"):])
    except json.JSONDecodeError:
        answer = {"success": False, "error-message": (done.stderr or done.stdout).strip()}
    if not answer.get("success"):
        raise FlowerCliError(f"`flwr {' '.join(args[:2])}` failed: "
                             + _one_line(str(answer.get("error-message", ""))))
    return answer


def _one_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.startswith("Using SuperLink")]
    return " ".join(lines) or "no reason given"


def register_node(folder: ServerFolder, node_public_key: str) -> int:
    """Register a node key with the running SuperLink; the node id Flower assigns."""
    with tempfile.TemporaryDirectory(prefix="emofl-enroll-") as scratch:
        key_file = Path(scratch) / "node_key.pub"
        key_file.write_text(node_public_key + "\n", encoding="ascii")
        answer = flwr_json(folder, "supernode", "register", str(key_file))
    return int(answer["node-id"])


def unregister_node(folder: ServerFolder, node_id: int) -> None:
    """Unregister `node_id` from the running SuperLink: the node is refused from now on."""
    flwr_json(folder, "supernode", "unregister", str(node_id))


def list_nodes(folder: ServerFolder) -> list[dict]:
    """The SuperLink's nodes as Flower lists them (node id, status, times)."""
    return flwr_json(folder, "supernode", "list")["nodes"]
