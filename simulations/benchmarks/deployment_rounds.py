"""Per-round wall time of the same 3-device federation deployed (Flower's deployment engine on
loopback) and simulated (Flower's simulation engine), where the time goes, bytes per device.

Usage: python -m emofl.simulations.benchmarks.deployment_rounds
           [--rounds 3] [--devices 3] [--work runs/deployment_rounds] [--results docs/results]

Deployed: `emofl server init` and `emofl server start` (SuperLink behind the Fleet-only nginx
proxy, TLS, node authentication), `emofl device init` and `emofl enroll` for each device,
`emofl client --data synthetic` for each, then `emofl run`. Simulated: `emofl simulate` with
the same run settings. Both runs are the tiny federation of the deployment tests (16 synthetic
faces per device, a width-8 model, one DP-SGD step per round), so that what is measured is the
engine, not the training. From each run's metrics.json: every round's wall time, the devices'
own training time (`train_seconds`, median per round) and the bytes each device sent; the
rest of a round is the engine: Flower's polling, message transport and, deployed, a new
ClientApp process per message. Writes `deployment_rounds.json` and `deployment_rounds.png`.
"""

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from emofl.common.processes import ProcessGroup, free_port

RUN_SETTINGS = {"synthetic-size": 16, "model-width": 8, "local-steps": 1, "batch-size": 16}
READY_S = 180


def emofl(*args: str, timeout: float = 900) -> dict:
    """Run an `emofl` command to its end; its JSON output."""
    result = subprocess.run([sys.executable, "-m", "emofl", *args], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"emofl {args[0]} failed: {result.stderr.strip()[-400:]}")
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def per_round(metrics: Path) -> list[dict]:
    rows = []
    for entry in json.loads(metrics.read_text())["rounds"]:
        train = statistics.median(c["train_seconds"] for c in entry["clients"])
        rows.append({"round": entry["round"], "wall_s": round(entry["wall_seconds"], 2),
                     "device_training_s": round(train, 2),
                     "engine_s": round(entry["wall_seconds"] - train, 2),
                     "bytes_up_per_device": int(statistics.median(
                         c["bytes_up"] for c in entry["clients"])),
                     "devices": entry["aggregated"]})
    return rows


def deployed(work: Path, rounds: int, devices: int) -> dict:
    server = work / "srv"
    emofl("server", "init", "--dir", str(server))
    port = free_port()
    with ProcessGroup() as group:
        group.start("emofl server start", [sys.executable, "-m", "emofl", "server", "start",
                                           "--dir", str(server), "--port", str(port),
                                           "--bind", "127.0.0.1"], work / "server.log")
        group.wait_until(lambda: (server / "endpoint.json").exists(), "the server started",
                         READY_S)
        for i in range(devices):
            device = work / f"dev{i}"
            emofl("device", "init", "--dir", str(device), "--name", f"dev{i}")
            emofl("enroll", "--dir", str(server), str(device / "request.json"), "--out",
                  str(work / f"dev{i}.bundle.json"))
            group.start(f"emofl client dev{i}", [
                sys.executable, "-m", "emofl", "client", "--dir", str(device), "--bundle",
                str(work / f"dev{i}.bundle.json"), "--data", "synthetic"], work / f"dev{i}.log")
        started = time.perf_counter()
        status = emofl("run", "--dir", str(server), "--rounds", str(rounds),
                       *[a for k, v in RUN_SETTINGS.items() for a in ("--set", f"{k}={v}")],
                       "--timeout", "900")["status"]
        whole = time.perf_counter() - started
    return {"status": status, "whole_run_s": round(whole, 1),
            "rounds": per_round(server / "run" / "metrics.json")}


def simulated(work: Path, rounds: int, devices: int) -> dict:
    out = work / "simulated"
    started = time.perf_counter()
    emofl("simulate", "--clients", str(devices), "--rounds", str(rounds), "--out", str(out),
          *[a for k, v in RUN_SETTINGS.items() for a in (f"--{k}", str(v))])
    whole = time.perf_counter() - started
    return {"whole_run_s": round(whole, 1), "rounds": per_round(out / "metrics.json")}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    labels, training, engine = [], [], []
    for mode in ("deployed", "simulated"):
        for row in result[mode]["rounds"]:
            labels.append(f"{mode}\nround {row['round']}")
            training.append(row["device_training_s"])
            engine.append(row["engine_s"])
    ax.bar(labels, training, label="device training (median)")
    ax.bar(labels, engine, bottom=training, label="engine: polling, transport, processes")
    ax.set(ylabel="seconds per round", title=f"{result['devices']} devices, tiny federation")
    ax.tick_params(axis="x", labelsize="small")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("runs/deployment_rounds"))
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    result = {"command": shlex.join(["python", "-m",
                                     "emofl.simulations.benchmarks.deployment_rounds",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d"), "devices": args.devices,
              "run_settings": RUN_SETTINGS,
              "deployed": deployed(args.work, args.rounds, args.devices),
              "simulated": simulated(args.work, args.rounds, args.devices)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "deployment_rounds.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.results / "deployment_rounds.png")
    print(json.dumps({mode: result[mode] for mode in ("deployed", "simulated")}, indent=2))


if __name__ == "__main__":
    main()
