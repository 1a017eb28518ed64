"""`emofl run`: submit the emofl Flower app to the running SuperLink and wait for it to end.

The app submitted is `DIR/app/pyproject.toml` and nothing else: the same ServerApp as
`flwr run .` (`emofl.server.federated.server_app:app`) and, for the devices, the enrolled-device
ClientApp (`emofl.client.device.client_app:app`), both named as modules installed on each side;
the FAB carries no code of its own. Its run config is the run's settings: metrics, checkpoints,
tree heads and the model card go to `DIR/run/`; with `--resume` the ServerApp continues from
that folder's checkpoint (after a SuperLink restart a run in progress ends `finished:failed` and
is not resumed by Flower itself).
"""

import json
import time
from pathlib import Path

from emofl.common.crypto.key_files import PUBLIC_CONTEXT
from emofl.common.errors import SettingsError
from emofl.common.protocol.run_settings import RUN_SETTINGS, RunSettings
from emofl.common.storage import atomic_io
from emofl.server.deployment import registry
from emofl.server.deployment.flower_cli import FlowerCliError, flwr_json
from emofl.server.deployment.server_folder import ServerFolder
from emofl.server.deployment.server_start import read_endpoint

SERVER_APP = "emofl.server.federated.server_app:app"
DEVICE_APP = "emofl.client.device.client_app:app"
POLL_S = 3.0
MANAGED_KEYS = ("rounds", "resume", "num-clients", "out", "secure-agg", "key-dir", "registry")
"""Run settings `emofl run` sets itself, from its options and the server folder."""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_app(folder: ServerFolder, settings: RunSettings) -> Path:
    """Write the app folder Flower builds the FAB from: a pyproject.toml naming the two apps
    and carrying `settings` as the run config; its path."""
    config = "\n".join(f"{key} = {_toml_value(value)}"
                       for key, value in settings.to_config().items())
    text = (f'[project]\nname = "emofl-deployment"\nversion = "0.1.0"\ndependencies = []\n\n'
            f'[tool.flwr.app]\npublisher = "emofl"\n\n[tool.flwr.app.components]\n'
            f'serverapp = "{SERVER_APP}"\nclientapp = "{DEVICE_APP}"\n\n'
            f'[tool.flwr.app.config]\n{config}\n')
    app = atomic_io.make_dir(folder.root / "app")
    atomic_io.write_bytes(app / "pyproject.toml", text.encode())
    return app


def run_settings(folder: ServerFolder, *, rounds: int, resume: bool, min_devices: int | None,
                 overrides: dict) -> RunSettings:
    """The run's settings: the overrides, secure aggregation when the server holds a public
    context, every active enrolled device expected unless `min_devices` says fewer."""
    unknown = sorted(set(overrides) - {spec.key for spec in RUN_SETTINGS})
    managed = sorted(set(overrides) & set(MANAGED_KEYS))
    if unknown or managed:
        raise SettingsError(f"--set {(unknown or managed)[0]}: " + (
            "no such run setting" if unknown else "set by emofl run itself (see its options)"))
    active = [d for d in registry.list_devices(folder.registry) if d.revoked_at is None]
    devices = min_devices if min_devices is not None else len(active)
    if devices < 1:
        raise SettingsError("no device is enrolled; enroll one with `emofl enroll` first")
    encrypted = (folder.keys / PUBLIC_CONTEXT).exists()
    values = {**overrides, "rounds": rounds, "resume": resume, "num-clients": devices,
              "out": str(folder.run_dir.resolve()),
              "registry": str(folder.registry.resolve()),
              "secure-agg": "ckks" if encrypted else "none",
              "key-dir": str(folder.keys.resolve()) if encrypted else ""}
    return RunSettings.from_config(values)


def submit(folder: ServerFolder, settings: RunSettings, *, timeout: float) -> dict:
    """Submit the run, wait until it ends (at most `timeout` s); its id, status and folder."""
    read_endpoint(folder)
    app = write_app(folder, settings)
    run_id = int(flwr_json(folder, "run", str(app.resolve()))["run-id"])
    deadline = time.monotonic() + timeout
    status = "pending"
    while not status.startswith("finished"):
        if time.monotonic() > deadline:
            raise FlowerCliError(f"run {run_id} did not finish within {timeout:.0f} s (status "
                                 f"{status}); it goes on; stop it with `flwr stop {run_id}`")
        time.sleep(POLL_S)
        runs = flwr_json(folder, "list", "--run-id", str(run_id))["runs"]
        status = runs[0]["status"] if runs else "unknown"
    return {"run_id": run_id, "status": status, "run": str(folder.run_dir),
            "metrics": str(folder.run_dir / "metrics.json")}
