"""Encrypted head inference on loopback: latency, bytes, agreement with plaintext, and the
TenSEAL `CKKSVector.mm` baseline.

Usage:
  python -m emofl.simulations.benchmarks.encrypted_head --val-data ../shared/data/fer2013/val \
      [--model FILE] [--repeats 50] [--out docs/results/encrypted_head.json]

An `emofl serve-head` process is started on a free loopback port, so the server's work runs in
its own process as in deployment (both share this machine's cores). After the one-time key
upload, each batch size's latency is the wall time of `EncryptedHeadClient.logits`: packing,
encryption, the gRPC round trip with the server's evaluation, decryption; the backbone's
forward time on the same batch (one thread) is reported beside it. The whole of val then
goes through the service to measure agreement with plaintext classification (features from
the torch model and from the ONNX file the device runs by default), and
`emofl classify --encrypted` is timed as a user runs it, start-up included, on 200 images,
with `--runtime onnx` (the default) and `--runtime torch`.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import tenseal as ts
import torch

from emofl.client.inference.encrypted_head_client import EncryptedHeadClient
from emofl.client.inference.runtime_models import load_frame_model
from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import to_faces
from emofl.common.model.frame_store import SHIPPED_MODEL, backbone_sha256, load_model

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BATCH_SIZES = (1, 9, 64)


def start_service(model: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emofl", "serve-head", "--model", model, "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if "serving on " not in line:
        raise RuntimeError(f"serve-head did not start: {line!r}")
    return process, line.split("serving on ")[1].split(" ")[0]


def backbone_features(model, images: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model.features(images[i:i + 256])
                          for i in range(0, len(images), 256)]).double().numpy()


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q) * 1000)


def backbone_ms(model, images: torch.Tensor, repeats: int) -> float:
    """Median time of the device's backbone forward on one batch (what precedes encryption)."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            model.features(images)
        samples.append(time.perf_counter() - started)
    return percentile_ms(samples, 50)


def latency(client: EncryptedHeadClient, model, images: torch.Tensor, features: np.ndarray,
            repeats: int) -> dict:
    rows = {}
    for faces in BATCH_SIZES:
        batch = features[:faces]
        client.logits(batch)  # first call per batch shape encodes the server's plaintexts
        sent, received = client.bytes_sent, client.bytes_received
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.logits(batch)
            samples.append(time.perf_counter() - started)
        rows[faces] = {
            "p50_ms": percentile_ms(samples, 50), "p95_ms": percentile_ms(samples, 95),
            "p50_ms_per_face": percentile_ms(samples, 50) / faces,
            "bytes_up": (client.bytes_sent - sent) // repeats,
            "bytes_down": (client.bytes_received - received) // repeats, "repeats": repeats,
            "backbone_p50_ms": backbone_ms(model, images[:faces], repeats),
        }
    return rows


def agreement(client: EncryptedHeadClient, model, features: np.ndarray) -> dict:
    encrypted = client.logits(features)
    with torch.inference_mode():
        clear = model.head(torch.from_numpy(features).float()).double().numpy()
    return {"n": len(features),
            "argmax_agreement": float((encrypted.argmax(1) == clear.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(encrypted - clear).max())}


def agreement_onnx(client: EncryptedHeadClient, model_path: str, images: torch.Tensor) -> dict:
    """The same over val with the device's default runtime: backbone features from the
    ONNX file `emofl classify` runs, encrypted head against that file's plaintext logits."""
    onnx_model = load_frame_model("onnx", model_path, lambda line: None)
    faces = images.numpy()
    features = np.concatenate([onnx_model.features(faces[i:i + 256])
                               for i in range(0, len(faces), 256)]).astype(np.float64)
    clear = np.concatenate([onnx_model.logits(faces[i:i + 256])
                            for i in range(0, len(faces), 256)])
    encrypted = client.logits(features)
    return {"n": len(features), "runtime": "onnx",
            "argmax_agreement": float((encrypted.argmax(1) == clear.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(encrypted - clear).max())}


def tenseal_mm(model, features: np.ndarray, repeats: int) -> dict:
    """TenSEAL's built-in vector-matrix product (needs all Galois keys), per face."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    context.global_scale = 2 ** 40
    context.generate_galois_keys()
    public = context.copy()
    public.make_context_public()
    weight = model.head.weight.detach().double().numpy().T.tolist()
    bias = model.head.bias.detach().double().numpy().tolist()
    samples, errors = [], []
    for i in range(repeats):
        started = time.perf_counter()
        encrypted = ts.ckks_vector(context, features[i].tolist())
        result = encrypted.mm(weight) + bias
        logits = np.array(result.decrypt())
        samples.append(time.perf_counter() - started)
        errors.append(np.abs(logits - (features[i] @ np.array(weight) + bias)).max())
    return {"p50_ms": percentile_ms(samples, 50), "repeats": repeats,
            "context_bytes": len(public.serialize(save_galois_keys=True)),
            "max_abs_logit_error": float(max(errors))}


def classify_command(model: str, address: str, files: list[str], repeats: int,
                     runtime: str) -> dict:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "emofl", "classify", *files, "--model", model,
             "--encrypted", "--server", address, "--runtime", runtime],
            capture_output=True, text=True, check=True)
        samples.append(time.perf_counter() - started)
        assert len(result.stdout.splitlines()) == len(files)
    wall = statistics.median(samples)
    return {"images": len(files), "runtime": runtime, "repeats": repeats, "median_wall_s": wall,
            "ms_per_face": wall / len(files) * 1000, "runs_s": samples}


def plot(report: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{n} face{'s' if n > 1 else ''}" for n in BATCH_SIZES] + ["mm, 1 face"]
    p50 = [report["latency"][str(n)]["p50_ms"] for n in BATCH_SIZES]
    p95 = [report["latency"][str(n)]["p95_ms"] for n in BATCH_SIZES]
    ax.bar(np.arange(4) - 0.2, p50 + [report["tenseal_mm"]["p50_ms"]], 0.4, label="p50")
    ax.bar(np.arange(3) + 0.2, p95, 0.4, label="p95")
    ax.set_xticks(range(4), labels)
    ax.set_yscale("log")
    ax.set_ylabel("ms per request (log)")
    ax.set_title("Encrypted head on loopback: packed layout vs TenSEAL mm")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--val-data", required=True)
    parser.add_argument("--model", default=str(SHIPPED_MODEL))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default="docs/results/encrypted_head.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.model)
    dataset = load_dataset(args.val_data)
    images = to_faces(dataset).images
    features = backbone_features(model, images)
    process, address = start_service(args.model)
    try:
        started = time.perf_counter()
        client = EncryptedHeadClient(address, backbone_sha256(model))
        open_s = time.perf_counter() - started
        report = {
            "address": address, "open_session_s": open_s, "key_upload_bytes": client.upload_bytes,
            "latency": {str(k): v for k, v in latency(client, model, images, features,
                                                            args.repeats).items()},
            "agreement_val": agreement(client, model, features),
            "agreement_val_onnx": agreement_onnx(client, args.model, images),
        }
        client.close()
        every = sorted(Path(args.val_data).glob("*/*.png"))
        files = [str(p) for p in every[:: max(1, len(every) // 200)][:200]]
        for runtime in ("onnx", "torch"):
            report[f"classify_200_{runtime}"] = classify_command(args.model, address, files, 3,
                                                                 runtime)
    finally:
        process.terminate()
        process.wait()
    report["tenseal_mm"] = tenseal_mm(model, features, 5)
    report["command"] = " ".join(["python -m emofl.simulations.benchmarks.encrypted_head",
                                  *sys.argv[1:]])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    plot(report, out.with_suffix(".png"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
