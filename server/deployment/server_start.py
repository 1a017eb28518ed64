"""`emofl server start`: the SuperLink on loopback and the Fleet-only proxy in front of it.

The SuperLink runs with TLS (the federation's server certificate), `--enable-supernode-auth`
(only registered node keys may join), `--database DIR/superlink.db` (registrations survive a
restart) and `--disable-runtime-dependency-installation` (left on, Flower 1.41 builds a fresh
virtual environment per run and installs the app's dependencies into it from the network: more
than 5 GB and a minute per run, measured here). It binds 127.0.0.1 on a port of its own, where
the operator's Flower CLI (`DIR/flwr/config.toml`) reaches its Control API; devices reach only
the proxy (server/deployment/fleet_proxy.py) on `--port`. `DIR/endpoint.json` names both
addresses while the server runs; the command runs until interrupted, then stops both.
"""

import http.client
import json
import signal
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

from emofl.common.processes import ProcessError, ProcessGroup, check_port_free, free_port
from emofl.common.storage import atomic_io
from emofl.server.deployment.fleet_proxy import proxy_command, write_config
from emofl.server.deployment.flower_cli import flower_env, write_cli_config
from emofl.server.deployment.server_folder import ServerFolder, ServerFolderError

READY_TIMEOUT_S = 90.0
LOOPBACK = "127.0.0.1"


def superlink_command(folder: ServerFolder, port: int) -> list[str]:
    scripts = Path(sys.executable).parent
    return [str(scripts / "flower-superlink"), "--host", LOOPBACK, "--port", str(port),
            "--ssl-ca-certfile", str(folder.ca_cert), "--ssl-certfile", str(folder.server_cert),
            "--ssl-keyfile", str(folder.server_key), "--enable-supernode-auth",
            "--database", str(folder.superlink_db), "--disable-runtime-dependency-installation"]


def https_status(folder: ServerFolder, host: str, port: int, path: str) -> int | None:
    """The HTTP status of an empty `POST path` to `host:port` over TLS verified against the
    federation's CA (None when nothing answers)."""
    context = ssl.create_default_context(cafile=str(folder.ca_cert))
    connection = http.client.HTTPSConnection(host, port, timeout=5, context=context)
    try:
        connection.request("POST", path, body=b"")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def read_endpoint(folder: ServerFolder) -> dict:
    """The running server's addresses; ServerFolderError when it is not started."""
    try:
        return json.loads(folder.endpoint_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise ServerFolderError(f"the server in {folder.root} is not running; start it with "
                                f"`emofl server start --dir {folder.root}`") from None


def serve(folder: ServerFolder, *, port: int, bind: str,
          on_ready: Callable[[str], object] = print) -> dict:
    """Run the SuperLink and the Fleet proxy until SIGINT or SIGTERM, or until one of them
    exits; what ran, and why it stopped. `on_ready` gets one JSON line once both answer."""
    if folder.endpoint_file.exists():
        endpoint = json.loads(folder.endpoint_file.read_text(encoding="utf-8"))
        if https_status(folder, LOOPBACK, endpoint["control_port"], "/v1/control/list-nodes"):
            raise ServerFolderError(f"the server in {folder.root} is already running")
    check_port_free(bind, port)
    control_port = free_port(LOOPBACK)
    write_cli_config(folder, f"{LOOPBACK}:{control_port}")
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, _: stopping.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ProcessGroup() as group:
            group.start("flower-superlink", superlink_command(folder, control_port),
                        folder.logs / "superlink.log", env=flower_env(folder.flwr_home),
                        cwd=folder.root)
            group.wait_until(lambda: https_status(folder, LOOPBACK, control_port,
                                                  "/v1/fleet/get-run") is not None,
                             "the SuperLink answered", READY_TIMEOUT_S)
            config = write_config(folder, bind, port, control_port)
            group.start("nginx", proxy_command(config), folder.logs / "proxy.log")
            host = LOOPBACK if bind in ("0.0.0.0", "::") else bind
            group.wait_until(lambda: https_status(folder, host, port, "/v1/fleet/get-run")
                             not in (None, 502), "the Fleet proxy answered", READY_TIMEOUT_S)
            endpoint = {"fleet_address": f"{folder.public_host}:{port}", "bind": bind,
                        "port": port, "control_port": control_port}
            atomic_io.write_json(folder.endpoint_file, endpoint)
            on_ready(json.dumps({"ready": True, **endpoint}))
            while not stopping and (exited := group.first_exit()) is None:
                time.sleep(0.5)
    finally:
        folder.endpoint_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not stopping:
        name, status = exited
        raise ProcessError(f"{name} exited with status {status}; see {folder.logs}")
    return {"server": str(folder.root), "stopped_by": signal.Signals(stopping[0]).name}
