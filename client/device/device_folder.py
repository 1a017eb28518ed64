"""The device folder `DEV`: `emofl device init` and `emofl device withdraw`.

```
DEV/keys/          the device's key pairs (client/device/keys.py), private files 0600
DEV/state/         the device's privacy ledger (client/federated/ledger_store.py)
DEV/consent.json   what the device agreed to share and its budget; `withdrawn_at` once withdrawn
DEV/request.json   the enrollment request for the operator: public keys and consent only
DEV/bundle.json    the enrollment bundle, once `emofl client --bundle` installed it
```

Nothing is ever overwritten: `init` refuses a folder that already holds a device.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from emofl.client.device.keys import DEVICE_KEY_FILES, create_device_keys, key_path, public_keys
from emofl.common.errors import UserError
from emofl.common.protocol.enrollment import (
    REQUEST_FORMAT,
    SHARED_DATA,
    Consent,
    EnrollmentRequest,
)
from emofl.common.storage import atomic_io

STATE_DIR = "state"
CONSENT = "consent.json"
REQUEST = "request.json"
BUNDLE = "bundle.json"
NODE_CONFIG_DEVICE = "emofl-device"
NODE_CONFIG_DATA = "emofl-data"
"""The node config keys through which `emofl client` tells the ClientApp the folder and data."""


class DeviceFolderError(UserError):
    """A device folder that cannot be made, or is not a device folder."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def state_dir(device_dir: str | Path) -> Path:
    return Path(device_dir) / STATE_DIR


def init_device(device_dir: str | Path, *, name: str, epsilon: float, delta: float) -> dict:
    """Make a device folder: keys, state folder, consent and enrollment request.

    Args:
        device_dir: the folder to create (or an empty one).
        name: the device's human-readable name, shown to the operator.
        epsilon: the most ε the device agrees to spend over the federation.
        delta: the δ of that budget.

    Returns:
        The request's path and the device's public keys.
    """
    dev = Path(device_dir)
    if dev.exists() and not dev.is_dir():
        raise DeviceFolderError(f"{dev} is a file; --dir names the device folder to create")
    taken = [str(path) for path in [dev / CONSENT, dev / REQUEST,
                                    *(key_path(dev, n) for n in DEVICE_KEY_FILES)]
             if path.exists()]
    if taken:
        raise DeviceFolderError(f"{dev} already holds a device ({taken[0]}); choose another --dir")
    consent = Consent(shares=SHARED_DATA, epsilon=float(epsilon), delta=float(delta),
                      given_at=now())
    atomic_io.make_dir(state_dir(dev))
    create_device_keys(dev)
    request = EnrollmentRequest(format=REQUEST_FORMAT, device_name=name,
                                consent=consent.__dict__, **public_keys(dev))
    atomic_io.write_json(dev / CONSENT, {**consent.__dict__, "withdrawn_at": None})
    atomic_io.write_json(dev / REQUEST, request.to_dict())
    return {"device": str(dev), "request": str(dev / REQUEST),
            "node_public_key": request.node_public_key, "consent": consent.__dict__}


def read_consent(device_dir: str | Path) -> dict:
    """The device's consent record; DeviceFolderError when DEV is not a device folder."""
    path = Path(device_dir) / CONSENT
    if not path.is_file():
        raise DeviceFolderError(f"{device_dir} is not a device folder (no {CONSENT}); create "
                                "one with `emofl device init --dir DEV`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DeviceFolderError(f"{path} is damaged: not a JSON consent record") from None


def withdrawal(device_dir: str | Path) -> str:
    """Why this device takes no further part ("" while its consent stands)."""
    withdrawn = read_consent(device_dir).get("withdrawn_at")
    return f"consent withdrawn at {withdrawn}" if withdrawn else ""


def withdraw(device_dir: str | Path) -> dict:
    """Withdraw the device's consent: from now on it refuses every round and says so in its
    replies. The record keeps when consent was given and when it was withdrawn."""
    consent = read_consent(device_dir)
    if not consent.get("withdrawn_at"):
        consent["withdrawn_at"] = now()
        atomic_io.write_json(Path(device_dir) / CONSENT, consent)
    return {"device": str(device_dir), "withdrawn_at": consent["withdrawn_at"]}
