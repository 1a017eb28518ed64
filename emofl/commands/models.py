"""`emofl pretrain`, `emofl evaluate` and `emofl model-info`: the frame model's files."""

import argparse

from emofl.commands.options import bounded, command_line
from emofl.common.protocol.choices import MODEL_KINDS, POOLS
from emofl.common.protocol.setting import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    Bound,
)

_count = bounded(int, AT_LEAST_ONE)
_positive = bounded(float, POSITIVE)
_UNIT_INTERVAL = Bound("in [0, 1]", lambda v: 0 <= v <= 1)
# A public share of 1 trains centrally on all of the data: the non-private upper bound.
_PUBLIC_SHARE = Bound("in (0, 1]", lambda v: 0 < v <= 1)


def add(commands: argparse._SubParsersAction) -> None:
    _add_pretrain(commands)
    evaluate = commands.add_parser("evaluate", help="accuracy of a model on labelled faces")
    evaluate.add_argument("--data", required=True, help="FER2013 CSV or image folder")
    evaluate.add_argument("--split", default=None, help="CSV Usage or split sub-folder")
    evaluate.add_argument("--model", default=None,
                          help="model file (default: the shipped model)")
    evaluate.set_defaults(handler=_evaluate)

    info = commands.add_parser("model-info", help="print a model's card")
    info.add_argument("--model", default=None, help="model file (default: the shipped model)")
    info.set_defaults(handler=_model_info)


def _add_pretrain(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("pretrain", help="non-private training on a public split (server)")
    p.add_argument("--data", required=True,
                   help="FER2013 training data (CSV or folder), or 'synthetic'")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--synthetic-size", type=_count, default=2000,
                   help="public synthetic faces to draw with --data synthetic")
    p.add_argument("--public-fraction", type=float, default=0.2,
                   help="share of the training data treated as public (default 0.2; 1: "
                        "central training on all of it, the non-private upper bound)")
    p.add_argument("--seed", type=bounded(int, NON_NEGATIVE), default=0)
    p.add_argument("--epochs", type=_count, default=30)
    p.add_argument("--batch-size", type=_count, default=64)
    p.add_argument("--lr", type=_positive, default=3e-3)
    p.add_argument("--model-width", type=_count, default=16)
    p.add_argument("--model-kind", choices=MODEL_KINDS, default=MODEL_KINDS[0],
                   help="backbone: depthwise-separable blocks or VGG-style stages")
    p.add_argument("--model-pool", choices=POOLS, default=POOLS[0],
                   help="how the backbone pools its last feature map: a learned weight per "
                        "channel and position (depthwise) or a global average")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--val-data", default="", help="report accuracy on this set")
    p.set_defaults(handler=_pretrain)


def _pretrain(args: argparse.Namespace) -> dict:
    _PUBLIC_SHARE.check(args.public_fraction, "--public-fraction")
    NON_NEGATIVE.check(args.weight_decay, "--weight-decay")
    _UNIT_INTERVAL.check(args.label_smoothing, "--label-smoothing")
    from emofl.server.federated.public_pretraining import PretrainSettings, pretrain

    card = pretrain(PretrainSettings(
        data=args.data, out=args.out, fraction=args.public_fraction, seed=args.seed,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        model_width=args.model_width, model_kind=args.model_kind,
        model_pool=args.model_pool,
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        val_data=args.val_data, synthetic_size=args.synthetic_size, command=command_line(),
    ))
    return {"out": args.out, "public_split": card["public_split"],
            "validation": card.get("validation")}


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


def _model_info(args: argparse.Namespace) -> dict:
    from emofl.common.model.frame_store import read_model_card

    return read_model_card(args.model)
