"""`emofl keys init`: the CKKS keys of a secure-aggregation federation."""

import argparse


def add(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="CKKS keys for secure aggregation")
    actions = keys.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create a secret context (clients) and a public "
                              "context (server), at 128-bit security")
    init.add_argument("--out", required=True, help="key directory to create")
    init.set_defaults(handler=_keys_init)


def _keys_init(args: argparse.Namespace) -> dict:
    from emofl.common.crypto.key_files import init_keys

    return init_keys(args.out)
