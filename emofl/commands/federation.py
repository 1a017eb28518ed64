"""`emofl demo` and `emofl simulate`: federated runs of simulated clients on this machine.

`simulate`'s options are generated from the run settings' one definition (`RUN_SETTINGS`), so
its flags, defaults, help and checks are those `flwr run .` gets from the run config.
"""

import argparse

from emofl.commands.options import add_setting_options, command_line, out_folder, setting_values
from emofl.common.protocol.run_settings import RUN_SETTINGS, RunSettings

SIMULATE_SETTINGS = tuple(spec for spec in RUN_SETTINGS if spec.on_cli)
DEMO_SETTINGS = tuple(spec for spec in RUN_SETTINGS
                      if spec.name in ("num_clients", "rounds", "epsilon"))


def add(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the README demo on built-in synthetic faces")
    demo.add_argument("--out", default=None, help="run directory (default: runs/demo-<time>)")
    add_setting_options(demo, DEMO_SETTINGS)
    demo.set_defaults(handler=_demo, printer=_print_simulation, run_folder=out_folder)

    simulate = commands.add_parser("simulate",
                                   help="federated DP training of N simulated clients")
    add_setting_options(simulate, SIMULATE_SETTINGS)
    simulate.set_defaults(handler=_simulate, printer=_print_simulation, run_folder=out_folder)


def _simulate(args: argparse.Namespace) -> dict:
    settings = RunSettings(**setting_values(args, SIMULATE_SETTINGS), command=command_line())
    from emofl.simulations.federation.runner import simulate

    return simulate(settings)


def _demo(args: argparse.Namespace) -> dict:
    values = setting_values(args, DEMO_SETTINGS)
    from emofl.simulations.federation.demo import default_demo_dir, run_demo

    args.out = args.out or default_demo_dir()  # kept in args: the run folder of an error's log
    return run_demo(args.out, values["num_clients"], values["rounds"], values["epsilon"],
                    command=command_line())


def _print_simulation(summary: dict) -> None:
    from emofl.simulations.federation.run_summary import format_summary

    print(format_summary(summary))
