"""The `emofl` command: one sub-command per user job, each a thin layer over the library.

User mistakes (bad paths, malformed data, impossible settings) end in one line on stderr and
exit status 2; nothing already written is touched.
"""

import argparse
import json
import shlex
import sys
from collections.abc import Callable

USER_ERROR_EXIT = 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_simulate(commands) -> None:
    p = commands.add_parser("simulate", help="federated DP training of N simulated clients")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a FER2013 CSV/folder")
    p.add_argument("--val-data", default="", help="held-out set (default: 10%% of --data)")
    p.add_argument("--clients", type=_positive_int, default=4)
    p.add_argument("--rounds", type=_positive_int, default=3)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epsilon", type=_positive_float, default=8.0,
                        help="each client's total ε over all rounds (default 8)")
    budget.add_argument("--no-dp", action="store_true", help="train without differential privacy")
    p.add_argument("--delta", type=_positive_float, default=1e-5)
    p.add_argument("--noise-multiplier", type=_positive_float, default=None,
                   help="fix σ instead of deriving it from ε")
    p.add_argument("--max-grad-norm", type=_positive_float, default=1.0)
    p.add_argument("--accountant", choices=("rdp", "prv"), default="rdp")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="Dirichlet label skew; 0 for an IID split (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/simulate")
    p.add_argument("--local-epochs", type=_positive_int, default=1)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=_positive_float, default=3e-4,
                   help="client Adam learning rate (small: label skew makes clients drift)")
    p.add_argument("--trainable", choices=("all", "top", "head"), default="all")
    p.add_argument("--init-model", default="", help="start from this model file")
    p.add_argument("--model-width", type=_positive_int, default=16)
    p.add_argument("--synthetic-size", type=_positive_int, default=300,
                   help="synthetic faces per client")
    p.add_argument("--secure-agg", choices=("none", "ckks"), default="none",
                   help="ckks: the server adds encrypted updates it cannot read")
    p.add_argument("--keys", default="",
                   help="CKKS key directory from `emofl keys init` (default: new keys in --out)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(handler=_simulate, printer=_print_simulation)


def _simulate(args: argparse.Namespace) -> dict:
    from emofl.common.run_settings import RunSettings
    from emofl.simulations.runner import simulate

    if args.alpha < 0:
        raise ValueError(f"--alpha must be positive (or 0 for IID), got {args.alpha}")
    settings = RunSettings(
        data=args.data, val_data=args.val_data, num_clients=args.clients, rounds=args.rounds,
        dp=not args.no_dp, epsilon=args.epsilon, delta=args.delta,
        noise_multiplier=args.noise_multiplier or 0.0, max_grad_norm=args.max_grad_norm,
        accountant=args.accountant, alpha=args.alpha, seed=args.seed,
        local_epochs=args.local_epochs, batch_size=args.batch_size, learning_rate=args.lr,
        trainable=args.trainable, init_model=args.init_model, synthetic_size=args.synthetic_size,
        model_width=args.model_width, secure_agg=args.secure_agg, key_dir=args.keys,
        out=args.out, resume=args.resume,
        command=shlex.join(["emofl", *sys.argv[1:]]),
    )
    return simulate(settings)


def _print_simulation(summary: dict) -> None:
    from emofl.simulations.runner import format_summary

    print(format_summary(summary))


def _add_pretrain(commands) -> None:
    p = commands.add_parser("pretrain", help="non-private training on a public split (server)")
    p.add_argument("--data", required=True,
                   help="FER2013 training data (CSV or folder), or 'synthetic'")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--synthetic-size", type=_positive_int, default=2000,
                   help="public synthetic faces to draw with --data synthetic")
    p.add_argument("--public-fraction", type=_positive_float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=_positive_int, default=30)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=_positive_float, default=3e-3)
    p.add_argument("--model-width", type=_positive_int, default=16)
    p.add_argument("--val-data", default="", help="report accuracy on this set")
    p.set_defaults(handler=_pretrain)


def _pretrain(args: argparse.Namespace) -> dict:
    from emofl.server.public_pretraining import PretrainSettings, pretrain

    if args.public_fraction >= 1:
        raise ValueError(f"--public-fraction must be below 1, got {args.public_fraction}")
    card = pretrain(PretrainSettings(
        data=args.data, out=args.out, fraction=args.public_fraction, seed=args.seed,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        model_width=args.model_width, val_data=args.val_data, synthetic_size=args.synthetic_size,
        command=shlex.join(["emofl", *sys.argv[1:]]),
    ))
    return {"out": args.out, "public_split": card["public_split"],
            "validation": card.get("validation")}


def _add_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="accuracy of a model on labelled faces")
    p.add_argument("--data", required=True, help="FER2013 CSV or image folder")
    p.add_argument("--split", default=None, help="CSV Usage or split sub-folder")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> dict:
    from emofl.common.datasets import load_dataset
    from emofl.common.federated_data import to_faces
    from emofl.common.model_store import load_model
    from emofl.common.training import evaluate

    model, _ = load_model(args.model)
    faces = to_faces(load_dataset(args.data, split=args.split))
    result = evaluate(model, faces.images, faces.labels).to_dict()
    return {"accuracy": result["accuracy"], "per_class_accuracy": result["per_class_accuracy"],
            "n": result["n"], "loss": result["loss"]}


def _add_keys(commands) -> None:
    p = commands.add_parser("keys", help="CKKS keys for secure aggregation")
    actions = p.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create a secret context (clients), a public "
                              "context (server) and an integrity key, at 128-bit security")
    init.add_argument("--out", required=True, help="key directory to create")
    init.set_defaults(handler=_keys_init)


def _keys_init(args: argparse.Namespace) -> dict:
    from emofl.common.key_files import init_keys

    return init_keys(args.out)


def _add_model_info(commands) -> None:
    p = commands.add_parser("model-info", help="print a model's card")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.set_defaults(handler=lambda args: _model_info(args.model))


def _model_info(model: str | None) -> dict:
    from emofl.common.model_store import read_card

    return read_card(model)


def _add_demo(commands) -> None:
    p = commands.add_parser("demo", help="the README demo on built-in synthetic faces")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo-<time>)")
    p.add_argument("--clients", type=_positive_int, default=4)
    p.add_argument("--rounds", type=_positive_int, default=3)
    p.add_argument("--epsilon", type=_positive_float, default=8.0)
    p.set_defaults(handler=_demo, printer=_print_simulation)


def _demo(args: argparse.Namespace) -> dict:
    from emofl.simulations.demo import default_demo_dir, run_demo

    return run_demo(args.out or default_demo_dir(), args.clients, args.rounds, args.epsilon,
                    command=shlex.join(["emofl", *sys.argv[1:]]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emofl", description="Privacy-preserving federated facial emotion recognition.")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_simulate, _add_pretrain, _add_evaluate, _add_model_info,
                _add_keys):
        add(commands)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from emofl.common.face_dataset import DataError
    from emofl.common.model_store import ModelError

    # CkksError and KeyFileError are ValueErrors too.
    return (DataError, ModelError, ValueError, FileNotFoundError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], dict] = args.handler
    try:
        result = handler(args)
    except _user_errors() as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"emofl {args.command}: error: {first_line}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print(f"emofl {args.command}: interrupted; completed rounds are kept", file=sys.stderr)
        return 130
    printer = getattr(args, "printer", None)
    if printer:
        printer(result)
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
