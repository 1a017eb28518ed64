"""`emofl client`: the device joins the federation as a Flower SuperNode.

Before starting anything it checks what it can check on its own, so that a mistake is one clear
line: the device folder and its keys, the bundle (installed with `--bundle` once), the data
(`synthetic`, or a FER2013 CSV or image folder that holds faces), and a TLS handshake with the
SuperLink's address verified against the bundle's CA (a wrong CA, or nothing listening, is
named). Then `flower-supernode` runs with the bundle's CA as root certificate, the device's
node key, `FLWR_HOME=DEV/flwr` and node config naming the device folder and data for the
ClientApp (client/device/client_app.py), until it exits or the command is interrupted.
"""

import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

from emofl.client.device.bundle import CA_FILE, install_bundle, installed_bundle
from emofl.client.device.device_folder import NODE_CONFIG_DATA, NODE_CONFIG_DEVICE, read_consent
from emofl.client.device.keys import NODE_KEY, key_path, node_public_key_text
from emofl.common.data.datasets import load_dataset
from emofl.common.errors import UserError
from emofl.common.processes import ProcessGroup, free_port, log_tail

HANDSHAKE_TIMEOUT_S = 10.0


class SuperLinkUnreachable(UserError):
    """The SuperLink's address does not answer, or does not prove itself with the bundle's CA."""


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_superlink(address: str, ca_file: Path) -> None:
    """A TLS handshake with `address`, verified against `ca_file`; SuperLinkUnreachable."""
    host, port = split_address(address)
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT_S) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return
    except ssl.SSLCertVerificationError as err:
        raise SuperLinkUnreachable(f"the server at {address} is not the one the bundle's CA "
                                   f"certifies ({err.verify_message})") from None
    except OSError as err:
        raise SuperLinkUnreachable(f"cannot reach the SuperLink at {address} "
                                   f"({(err.strerror or str(err)).lower()})") from None


def check_data(data: str) -> None:
    """UserError unless `data` is `synthetic` or holds at least one face."""
    if data != "synthetic" and len(load_dataset(data)) == 0:
        raise UserError(f"{data} holds no faces")


def supernode_command(device_dir: Path, superlink: str, data: str, port: int) -> list[str]:
    scripts = Path(sys.executable).parent
    node_config = f'{NODE_CONFIG_DEVICE}="{device_dir.resolve()}" {NODE_CONFIG_DATA}="{data}"'
    return [str(scripts / "flower-supernode"), "--superlink", superlink,
            "--root-certificates", str(device_dir / CA_FILE),
            "--auth-supernode-private-key", str(key_path(device_dir, NODE_KEY)),
            "--node-config", node_config, "--port", str(port)]


def run_client(device_dir: str | Path, *, bundle: str | None, data: str) -> dict:
    """Join the federation and take part until the SuperNode exits or SIGINT/SIGTERM."""
    dev = Path(device_dir).resolve()
    read_consent(dev)
    node_public_key_text(dev)
    enrolled = install_bundle(dev, bundle) if bundle else installed_bundle(dev)
    if data != "synthetic":
        data = str(Path(data).resolve())
    check_data(data)
    check_superlink(enrolled.superlink, dev / CA_FILE)
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _: stopping.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "FLWR_HOME": str((dev / "flwr").resolve()),
           "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
    log = dev / "logs" / "supernode.log"
    try:
        with ProcessGroup() as group:
            command = supernode_command(dev, enrolled.superlink, data, free_port())
            process = group.start("flower-supernode", command, log, env=env, cwd=dev)
            while not stopping and process.poll() is None:
                time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopping and process.returncode:
        raise UserError(f"the SuperNode stopped (status {process.returncode}): {log_tail(log)}")
    return {"device": str(dev), "node_id": enrolled.node_id, "superlink": enrolled.superlink,
            "stopped_by": signal.Signals(stopping[0]).name if stopping else "superlink"}
