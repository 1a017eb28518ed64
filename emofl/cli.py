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
    from emofl.common.protocol.run_settings import RunSettings
    from emofl.simulations.federation.runner import simulate

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
    from emofl.simulations.federation.runner import format_summary

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
    p.add_argument("--model-kind", choices=("separable", "vgg"), default="separable",
                   help="backbone: depthwise-separable blocks or VGG-style stages")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--val-data", default="", help="report accuracy on this set")
    p.set_defaults(handler=_pretrain)


def _pretrain(args: argparse.Namespace) -> dict:
    from emofl.server.federated.public_pretraining import PretrainSettings, pretrain

    if args.public_fraction >= 1:
        raise ValueError(f"--public-fraction must be below 1, got {args.public_fraction}")
    card = pretrain(PretrainSettings(
        data=args.data, out=args.out, fraction=args.public_fraction, seed=args.seed,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        model_width=args.model_width, model_kind=args.model_kind,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        val_data=args.val_data, synthetic_size=args.synthetic_size,
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
    from emofl.common.data.datasets import load_dataset
    from emofl.common.data.federated_data import to_faces
    from emofl.common.model.frame_store import load_model
    from emofl.common.model.training import evaluate

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
    from emofl.common.crypto.key_files import init_keys

    return init_keys(args.out)


def _add_model_info(commands) -> None:
    p = commands.add_parser("model-info", help="print a model's card")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.set_defaults(handler=lambda args: _model_info(args.model))


def _model_info(model: str | None) -> dict:
    from emofl.common.model.frame_store import read_card

    return read_card(model)


def _add_demo(commands) -> None:
    p = commands.add_parser("demo", help="the README demo on built-in synthetic faces")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo-<time>)")
    p.add_argument("--clients", type=_positive_int, default=4)
    p.add_argument("--rounds", type=_positive_int, default=3)
    p.add_argument("--epsilon", type=_positive_float, default=8.0)
    p.set_defaults(handler=_demo, printer=_print_simulation)


def _demo(args: argparse.Namespace) -> dict:
    from emofl.simulations.federation.demo import default_demo_dir, run_demo

    return run_demo(args.out or default_demo_dir(), args.clients, args.rounds, args.epsilon,
                    command=shlex.join(["emofl", *sys.argv[1:]]))


def _add_serve_head(commands) -> None:
    p = commands.add_parser("serve-head", help="serve a model's softmax head on encrypted "
                            "features over gRPC (the server never sees a face)")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50061, help="0 picks a free port")
    p.add_argument("--tls-cert", default=None, help="PEM certificate (with --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key, unencrypted")
    p.set_defaults(handler=_serve_head)


def _serve_head(args: argparse.Namespace) -> dict:
    import signal
    import threading

    from emofl.server.head.service import start_head_server

    server, port, service = start_head_server(args.model, args.host, args.port,
                                              args.tls_cert, args.tls_key)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    channel = "TLS" if args.tls_cert else "plaintext channel, encrypted features"
    print(f"emofl serve-head: serving on {args.host}:{port} ({channel}); Ctrl-C stops",
          flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    server.stop(grace=1).wait()
    return {"stopped": True, "port": port, "open_sessions": len(service.sessions)}


def _add_classify(commands) -> None:
    p = commands.add_parser("classify", help="classify face images; one JSON line per face")
    p.add_argument("images", nargs="+", help="face crops (or photos, with --detect)")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--detect", action="store_true", help="find faces first (Haar cascade)")
    p.add_argument("--encrypted", action="store_true",
                   help="run the head on an encrypted-head service (needs --server)")
    p.add_argument("--server", default=None, help="HOST:PORT of `emofl serve-head`")
    p.add_argument("--tls-ca", default=None, help="PEM certificate to trust for the server")
    p.set_defaults(handler=_classify, printer=lambda summary: None)


def _classify(args: argparse.Namespace) -> dict:
    from contextlib import ExitStack

    from emofl.client.inference.encrypted_head_client import EncryptedHeadClient
    from emofl.client.inference.image_classification import ImageProblem, classify_files, local_head
    from emofl.common.model.frame_store import backbone_sha256, load_model

    if args.encrypted != bool(args.server):
        raise ValueError("--encrypted and --server HOST:PORT go together")
    model, _ = load_model(args.model)
    with ExitStack() as stack:
        if args.encrypted:
            remote = stack.enter_context(
                EncryptedHeadClient(args.server, backbone_sha256(model), args.tls_ca))
            head = remote.logits
        else:
            head = local_head(model)
        failed = faces = 0
        for item in classify_files(args.images, model, head, args.detect):
            if isinstance(item, ImageProblem):
                failed += item.fatal
                print(f"emofl classify: {'error: ' if item.fatal else ''}{item.reason}",
                      file=sys.stderr, flush=True)
            else:
                faces += 1
                print(json.dumps(item), flush=True)
    if failed:
        raise ValueError(f"{failed} of {len(args.images)} images could not be classified")
    return {"faces": faces}


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _add_analyze(commands) -> None:
    p = commands.add_parser("analyze", help="per-participant emotion, engagement and stability "
                            "of a meeting video or camera")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", help="recorded meeting video")
    source.add_argument("--camera", type=_non_negative_int, metavar="N", help="camera index")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="frame model file (default: the shipped model)")
    p.add_argument("--weights", default="",
                   help="engagement weights, e.g. happy=1.0,sad=0.1 (unnamed classes keep "
                   "their defaults)")
    p.add_argument("--fps", type=_positive_float, default=None,
                   help="process at most F frames per second of video (default: all)")
    p.add_argument("--save-annotated", action="store_true",
                   help="also write annotated.mp4 (the only output with pixels of faces)")
    p.add_argument("--exclude", type=_non_negative_int, nargs="+", action="extend", default=[],
                   metavar="ID", help="participants without consent: blurred in annotated.mp4, "
                   "left out of every other output")
    p.add_argument("--smoothing", choices=("temporal", "ema", "none"), default="temporal",
                   help="per-participant smoothing over time (default: the temporal model)")
    p.add_argument("--temporal-model", default=None,
                   help="temporal model file (default: the shipped one)")
    p.add_argument("--ema-alpha", type=_positive_float, default=None,
                   help="weight of a new step with --smoothing ema")
    p.add_argument("--analysis-fps", type=float, default=None,
                   help="classify and smooth each face this often (default: the temporal "
                   "model's rate, 10/s); 0: every processed frame")
    p.add_argument("--window", type=_positive_float, default=10.0,
                   help="seconds of the sliding window for stability S_i (default 10)")
    p.add_argument("--alert-seconds", type=float, default=10.0,
                   help="alert when angry/fear/sad dominates longer than this (default 10)")
    p.add_argument("--detect-every", type=_positive_int, default=10,
                   help="run face detection every N processed frames (default 10)")
    p.add_argument("--detect-width", type=_non_negative_int, default=320,
                   help="detect on frames shrunk to this width; 0: full size (default 320)")
    p.add_argument("--change-threshold", type=float, default=4.0,
                   help="re-run the CNN on a face whose 48x48 crop changed by more than this "
                   "many gray levels on average; 0: always (default 4)")
    p.add_argument("--no-tracking", action="store_true",
                   help="report faces only where detected (the naive pipeline, for comparison)")
    p.set_defaults(handler=_analyze)


def _analyze(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from emofl.client.meeting.analyze_run import AnalyzeOptions, run_analysis
    from emofl.client.meeting.analyzer import AnalyzerSettings

    if args.analysis_fps is not None and args.analysis_fps < 0:
        raise ValueError(f"--analysis-fps must be 0 or more, got {args.analysis_fps}")
    pipeline = AnalyzerSettings(
        max_fps=args.fps, analysis_fps=args.analysis_fps, detect_width=args.detect_width or None,
        detect_every=args.detect_every, tracking=not args.no_tracking,
        exclude=frozenset(args.exclude))
    return run_analysis(AnalyzeOptions(
        out=Path(args.out), video=args.video, camera=args.camera, model=args.model,
        temporal_model=args.temporal_model, smoothing=args.smoothing, ema_alpha=args.ema_alpha,
        weights=args.weights, window_s=args.window, alert_seconds=args.alert_seconds,
        change_threshold=args.change_threshold, save_annotated=args.save_annotated,
        pipeline=pipeline, command=shlex.join(["emofl", *sys.argv[1:]])))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emofl", description="Privacy-preserving federated facial emotion recognition.")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_simulate, _add_pretrain, _add_evaluate, _add_model_info,
                _add_keys, _add_serve_head, _add_classify, _add_analyze):
        add(commands)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from emofl.common.data.face_dataset import DataError
    from emofl.common.model.frame_store import ModelError

    # CkksError and KeyFileError are ValueErrors; the encrypted-head client's HeadServiceError
    # is a ConnectionError.
    return (DataError, ModelError, ValueError, FileNotFoundError, PermissionError,
            ConnectionError)


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
