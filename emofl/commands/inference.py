"""`emofl serve-head` and `emofl classify`: emotions of face images, with the softmax head run
locally or on an encrypted-head service that never sees a face."""

import argparse
import json
import sys

from emofl.common.edge.files import RUNTIMES
from emofl.common.errors import SettingsError, UserError


def add(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve-head", help="serve a model's softmax head on encrypted "
                                "features over gRPC (the server never sees a face)")
    serve.add_argument("--model", default=None, help="model file (default: the shipped model)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50061,
                       help="0..65535; 0 picks a free port; a port in use is refused")
    serve.add_argument("--tls-cert", default=None, help="PEM certificate (with --tls-key)")
    serve.add_argument("--tls-key", default=None, help="PEM private key, unencrypted")
    serve.set_defaults(handler=_serve_head)

    p = commands.add_parser("classify", help="classify face images; one JSON line per face")
    p.add_argument("images", nargs="+", help="face crops (or photos, with --detect)")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--detect", action="store_true", help="find faces first (Haar cascade)")
    p.add_argument("--encrypted", action="store_true",
                   help="run the head on an encrypted-head service (needs --server)")
    p.add_argument("--server", default=None, help="HOST:PORT of `emofl serve-head`")
    p.add_argument("--tls-ca", default=None, help="PEM certificate to trust for the server")
    p.add_argument("--runtime", choices=RUNTIMES, default=RUNTIMES[0],
                   help="ONNX Runtime with the fp32 or int8 graph, or torch (default: "
                   f"{RUNTIMES[0]}); a --model FILE is exported once on first use")
    p.set_defaults(handler=_classify, printer=lambda summary: None)


def _serve_head(args: argparse.Namespace) -> dict:
    import os
    import signal
    import threading

    # gRPC's C core would also print its own lines about a port it cannot bind; the command
    # reports that in one line. It reads this when gRPC is first imported; the user's value wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
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


def _classify(args: argparse.Namespace) -> dict:
    if args.encrypted != bool(args.server):
        raise SettingsError("--encrypted and --server HOST:PORT go together")
    if args.encrypted and args.runtime == "onnx-int8":
        raise SettingsError("--encrypted sends fp32 backbone features: use --runtime onnx or "
                            "torch, not onnx-int8")
    from contextlib import ExitStack

    from emofl.client.inference.encrypted_head_client import EncryptedHeadClient
    from emofl.client.inference.image_classification import ImageProblem, classify_files
    from emofl.client.inference.runtime_models import load_frame_model

    model = load_frame_model(args.runtime, args.model, _note)
    with ExitStack() as stack:
        if args.encrypted:
            remote = stack.enter_context(
                EncryptedHeadClient(args.server, model.backbone_sha256, args.tls_ca))

            def logits_of(faces):  # the backbone here, the head on the service
                return remote.logits(model.features(faces))
        else:
            logits_of = model.logits
        failed = faces = 0
        for item in classify_files(args.images, logits_of, args.detect):
            if isinstance(item, ImageProblem):
                failed += item.fatal
                _note(f"{'error: ' if item.fatal else ''}{item.reason}")
            else:
                faces += 1
                print(json.dumps(item), flush=True)
    if failed:
        raise UserError(f"{failed} of {len(args.images)} images could not be classified")
    return {"faces": faces}


def _note(line: str) -> None:
    print(f"emofl classify: {line}", file=sys.stderr, flush=True)
