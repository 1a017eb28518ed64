"""The server folder `DIR` and `emofl server init`.

```
DIR/server.json        server id, host names, when it was made
DIR/tls/               ca.pem, ca.key (0600), server.pem, server.key (0600)
DIR/flwr/              FLWR_HOME for every Flower CLI call (config.toml), never ~/.flwr
DIR/registry.sqlite    the enrollment registry (server/deployment/registry.py)
DIR/superlink.db       the SuperLink's own state (`--database`): node keys and ids
DIR/keys/              the CKKS public context, once the operator gives it
DIR/proxy/, DIR/logs/  the Fleet proxy's configuration and every process's log
DIR/run/               metrics, checkpoints and the model card of `emofl run`
```

Nothing is ever overwritten, and no CKKS secret key is ever written here: enrollment reads the
secret context from the operator's key folder, seals it to the device and keeps only the
public half.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.storage import atomic_io
from emofl.server.deployment.certificates import make_tls_files, server_names
from emofl.server.deployment.registry import create_registry

SERVER_FORMAT = "emofl-server/1"


class ServerFolderError(UserError):
    """A server folder that cannot be made, or a folder that is not one."""


@dataclass(frozen=True)
class ServerFolder:
    """The paths of one server folder and its fixed identity."""

    root: Path
    server_id: str
    hostnames: tuple[str, ...]

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.tls / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls / "server.key"

    @property
    def flwr_home(self) -> Path:
        return self.root / "flwr"

    @property
    def registry(self) -> Path:
        return self.root / "registry.sqlite"

    @property
    def superlink_db(self) -> Path:
        return self.root / "superlink.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def proxy(self) -> Path:
        return self.root / "proxy"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def endpoint_file(self) -> Path:
        """Where a started server records its addresses (server/deployment/endpoint.py)."""
        return self.root / "endpoint.json"

    @property
    def public_host(self) -> str:
        """The name devices use to reach the server: the first host name given."""
        return self.hostnames[0]


def init_server(root: str | Path, hostnames: list[str]) -> dict:
    """Make a server folder: CA and server certificate, registry, Flower CLI home.

    Args:
        root: the folder to create (or an empty one).
        hostnames: names and addresses devices use to reach the server; the certificate also
            names localhost and 127.0.0.1.

    Returns:
        The server id, the certificate's names and the CA certificate's path.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ServerFolderError(f"{root} is a file; --dir names the server folder to create")
    if root.exists() and any(root.iterdir()):
        raise ServerFolderError(f"{root} is not empty; `emofl server init` never overwrites "
                                "(choose a new --dir)")
    server_id = uuid.uuid4().hex
    names = server_names(hostnames)
    folder = ServerFolder(root=root, server_id=server_id, hostnames=tuple(names))
    tls = make_tls_files(names, server_id)
    for path, data, private in ((folder.ca_cert, tls.ca_cert, False),
                                (folder.tls / "ca.key", tls.ca_key, True),
                                (folder.server_cert, tls.server_cert, False),
                                (folder.server_key, tls.server_key, True)):
        atomic_io.write_bytes(path, data, private=private)
    for sub in (folder.flwr_home, folder.keys, folder.logs):
        atomic_io.make_dir(sub)
    create_registry(folder.registry)
    atomic_io.write_json(root / "server.json", {
        "format": SERVER_FORMAT, "server_id": server_id, "hostnames": names,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
    return {"server": str(root), "server_id": server_id, "certificate_names": names,
            "ca_certificate": str(folder.ca_cert)}


def open_server(root: str | Path) -> ServerFolder:
    """The server folder at `root` (as an absolute path: helper processes run inside it);
    ServerFolderError when it is not one."""
    root = Path(root).resolve()
    path = root / "server.json"
    if not path.is_file():
        raise ServerFolderError(f"{root} is not a server folder (no server.json); create one "
                                "with `emofl server init --dir DIR`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != SERVER_FORMAT:
            raise ValueError
        return ServerFolder(root=root, server_id=str(data["server_id"]),
                            hostnames=tuple(data["hostnames"]))
    except (ValueError, KeyError, TypeError):
        raise ServerFolderError(f"{path} is damaged: not an emofl server record") from None
