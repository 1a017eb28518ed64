"""A deployed federation on Flower's deployment engine: `emofl server init|start`, `emofl device
init|withdraw`, `emofl enroll`, `emofl revoke`, `emofl client` and `emofl run` (docs/deployment.md).
"""

import argparse

from emofl.commands.options import bounded
from emofl.common.protocol.setting import AT_LEAST_ONE, OPEN_UNIT_INTERVAL, POSITIVE, Bound

PORT = Bound("a TCP port (1-65535)", lambda v: 1 <= v <= 65535)
DEFAULT_PORT = 9092


def add(commands: argparse._SubParsersAction) -> None:
    _add_server(commands)
    _add_device(commands)
    enroll = commands.add_parser("enroll", help="admit a device: register its node key, record "
                                 "its consent, write its bundle")
    enroll.add_argument("--dir", required=True, help="server folder (its server running)")
    enroll.add_argument("request", help="the device's request.json")
    enroll.add_argument("--out", required=True, help="bundle file to write for the device")
    enroll.add_argument("--keys", default=None, help="CKKS key folder from `emofl keys init`: "
                        "its secret context is sealed to the device (secure aggregation)")
    enroll.set_defaults(handler=_enroll)
    revoke = commands.add_parser("revoke", help="unregister a node; it is refused from now on")
    revoke.add_argument("--dir", required=True, help="server folder (its server running)")
    revoke.add_argument("node", type=int, help="node id (from `emofl enroll`)")
    revoke.set_defaults(handler=_revoke)
    client = commands.add_parser("client", help="join the federation as an enrolled device")
    client.add_argument("--dir", required=True, help="device folder")
    client.add_argument("--bundle", default=None, help="enrollment bundle (needed once)")
    client.add_argument("--data", required=True, help="the device's own faces: a FER2013 CSV, "
                        "an image folder, or 'synthetic'")
    client.set_defaults(handler=_client)
    run = commands.add_parser("run", help="run the federation's rounds on the enrolled devices")
    run.add_argument("--dir", required=True, help="server folder (its server running)")
    run.add_argument("--rounds", type=bounded(int, AT_LEAST_ONE), default=3)
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    run.add_argument("--min-devices", type=bounded(int, AT_LEAST_ONE), default=None,
                     help="devices each round waits for (default: every enrolled one)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a run setting (the keys of `flwr run`'s run config), repeatable")
    run.add_argument("--timeout", type=bounded(float, POSITIVE), default=3600.0,
                     help="seconds to wait for the run to end (default: %(default)s)")
    run.set_defaults(handler=_run)


def _add_server(commands: argparse._SubParsersAction) -> None:
    server = commands.add_parser("server", help="the operator's server folder and SuperLink")
    actions = server.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create a server folder: CA, server certificate, "
                              "registry, Flower CLI settings")
    init.add_argument("--dir", required=True, help="server folder to create")
    init.add_argument("--hostname", action="append", default=[], metavar="NAME",
                      help="a name or address devices use to reach the server, repeatable "
                      "(localhost and 127.0.0.1 are always included)")
    init.set_defaults(handler=_server_init)
    start = actions.add_parser("start", help="run the SuperLink (loopback) and the Fleet-only "
                               "TLS proxy devices connect to, until interrupted")
    start.add_argument("--dir", required=True, help="server folder")
    start.add_argument("--port", type=bounded(int, PORT), default=DEFAULT_PORT,
                       help="device-facing port (default: %(default)s)")
    start.add_argument("--bind", default="0.0.0.0",
                       help="device-facing address to listen on (default: %(default)s)")
    start.set_defaults(handler=_server_start)


def _add_device(commands: argparse._SubParsersAction) -> None:
    device = commands.add_parser("device", help="a participant's device folder")
    actions = device.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create the device's keys, state and enrollment "
                              "request (public keys and consent only)")
    init.add_argument("--dir", required=True, help="device folder to create")
    init.add_argument("--name", default="device", help="a name the operator sees")
    init.add_argument("--epsilon", type=bounded(float, POSITIVE), default=8.0,
                      help="the most ε this device agrees to spend (default: %(default)s)")
    init.add_argument("--delta", type=bounded(float, OPEN_UNIT_INTERVAL), default=1e-5,
                      help="its δ (default: %(default)s)")
    init.set_defaults(handler=_device_init)
    withdraw = actions.add_parser("withdraw", help="withdraw consent: the device refuses "
                                  "every further round and says so")
    withdraw.add_argument("--dir", required=True, help="device folder")
    withdraw.set_defaults(handler=_device_withdraw)


def _server_init(args: argparse.Namespace) -> dict:
    from emofl.server.deployment.server_folder import init_server

    return init_server(args.dir, args.hostname)


def _server_start(args: argparse.Namespace) -> dict:
    from emofl.server.deployment.server_folder import open_server
    from emofl.server.deployment.server_start import serve

    return serve(open_server(args.dir), port=args.port, bind=args.bind,
                 on_ready=lambda line: print(line, flush=True))


def _device_init(args: argparse.Namespace) -> dict:
    from emofl.client.device.device_folder import init_device

    return init_device(args.dir, name=args.name, epsilon=args.epsilon, delta=args.delta)


def _device_withdraw(args: argparse.Namespace) -> dict:
    from emofl.client.device.device_folder import withdraw

    return withdraw(args.dir)


def _enroll(args: argparse.Namespace) -> dict:
    from emofl.server.deployment.enrollment import enroll
    from emofl.server.deployment.server_folder import open_server

    return enroll(open_server(args.dir), args.request, args.out, args.keys)


def _revoke(args: argparse.Namespace) -> dict:
    from emofl.server.deployment.enrollment import revoke
    from emofl.server.deployment.server_folder import open_server

    return revoke(open_server(args.dir), args.node)


def _client(args: argparse.Namespace) -> dict:
    from emofl.client.device.supernode import run_client

    return run_client(args.dir, bundle=args.bundle, data=args.data)


def _run(args: argparse.Namespace) -> dict:
    from emofl.common.errors import SettingsError
    from emofl.server.deployment.run_submission import run_settings, submit
    from emofl.server.deployment.server_folder import open_server

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    folder = open_server(args.dir)
    settings = run_settings(folder, rounds=args.rounds, resume=args.resume,
                            min_devices=args.min_devices, overrides=overrides)
    return submit(folder, settings, timeout=args.timeout)
