"""The device-facing door: an nginx TLS reverse proxy that forwards the Fleet API and nothing else.

Flower 1.41's SuperLink serves its Fleet (`/v1/fleet/...`), Control (`/v1/control/...`) and
Runtime (`/v1/runtime/...`) APIs as protobuf over HTTPS on one port, and the open-source Control
API has no authentication: whoever reaches it can register nodes and submit runs whose code
every SuperNode executes. So the SuperLink binds to 127.0.0.1 only, where the operator's
`flwr` calls reach it, and devices reach it through nginx (Debian's `nginx-light`), which
terminates TLS with the federation's server certificate and forwards `POST /v1/fleet/<rpc>` for
exactly the Fleet RPCs a SuperNode makes (`FLEET_RPCS`, the paths of
`flwr.supernode.fleet_http_client.FleetHttpClient`) to the SuperLink over TLS, verified against
the federation's CA. Every other path, and every other method, gets 403.
"""

import grp
import os
import pwd
import shutil
from pathlib import Path

from emofl.common.errors import UserError
from emofl.common.storage import atomic_io
from emofl.server.deployment.server_folder import ServerFolder

FLEET_RPCS = ("register-node", "activate-node", "deactivate-node", "unregister-node",
              "send-node-heartbeat", "pull-messages", "push-messages", "get-run", "get-fab",
              "push-object", "pull-object", "confirm-message-received")
UNPRIVILEGED_USER = "nobody"


class ProxyError(UserError):
    """nginx is missing, or refused its configuration; the message says which."""


def nginx_binary() -> str:
    """The nginx executable; ProxyError naming the Debian package when it is not installed."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if not found:
        raise ProxyError("nginx is not installed; install it with "
                         "`apt-get install -y nginx-light`")
    return found


def _worker_user(temp: Path) -> str:
    """nginx's `user` line: as root, workers run as `nobody`, which must own the temp folder."""
    if os.geteuid() != 0:
        return ""
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    for path in [temp, *temp.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return f"user {UNPRIVILEGED_USER} {grp.getgrgid(entry.pw_gid).gr_name};\n"


def write_config(folder: ServerFolder, bind_host: str, port: int, upstream_port: int) -> Path:
    """Write `DIR/proxy/nginx.conf` for a proxy on `bind_host:port` to the SuperLink on
    `127.0.0.1:upstream_port`; its path."""
    temp = atomic_io.make_dir(folder.proxy / "tmp")
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        atomic_io.make_dir(temp / name)
    listen = f"[{bind_host}]:{port}" if ":" in bind_host else f"{bind_host}:{port}"
    fleet = "|".join(FLEET_RPCS)
    text = f"""# Written by `emofl server start`; forwards the Fleet API only.
{_worker_user(temp)}worker_processes 1;
daemon off;
pid {folder.proxy / "nginx.pid"};
error_log {folder.logs / "proxy-error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log {folder.logs / "proxy-access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    server_tokens off;
    server {{
        listen {listen} ssl;
        ssl_certificate {folder.server_cert};
        ssl_certificate_key {folder.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 0;
        location ~ ^/v1/fleet/({fleet})$ {{
            limit_except POST {{ deny all; }}
            proxy_pass https://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_trusted_certificate {folder.ca_cert};
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
        location / {{ return 403; }}
    }}
}}
"""
    path = folder.proxy / "nginx.conf"
    atomic_io.write_bytes(path, text.encode())
    return path


def proxy_command(config: Path) -> list[str]:
    """The command that runs nginx in the foreground with `config` (its own prefix folder)."""
    return [nginx_binary(), "-p", str(config.parent), "-c", str(config)]
