"""`emofl simulate`: a federated DP run of N simulated clients on this machine (Flower + Ray)."""

import json
import logging
import os
import sys
import time
from pathlib import Path

from flwr.app import ArrayRecord
from tqdm import tqdm

from emofl.client.federated.client_app import build_client_app, ledger_dir
from emofl.client.federated.keys import load_client_keys
from emofl.client.federated.ledger_store import load_ledger
from emofl.client.federated.update_encryption import global_state
from emofl.common.crypto.key_files import init_keys
from emofl.common.data.federated_data import validation_faces
from emofl.common.errors import UserError
from emofl.common.model.release import release_model
from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.protocol.run_settings import RUN_SETTINGS, RunSettings
from emofl.common.storage import atomic_io
from emofl.server.federated.checkpoint import (
    Checkpoint,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from emofl.server.federated.round_recorder import METRICS_FILE, round_failure
from emofl.server.federated.server_app import build_server_app, initial_model
from emofl.simulations.federation.interrupt import ctrl_c_ends_the_run
from emofl.simulations.federation.preflight import check_federation
from emofl.simulations.federation.run_summary import max_epsilon, summarize


class RunDirError(UserError):
    """The run directory does not fit the request: a run exists without --resume, or none with."""


class RunFailedError(UserError):
    """Every device of a round failed or was rejected: nothing was trained."""


def check_run_dir(settings: RunSettings) -> None:
    """Refuse to overwrite a run without --resume, or to resume where there is no run."""
    out = Path(settings.out)
    has_checkpoint = checkpoint_path(out).exists()
    if has_checkpoint and not settings.resume:
        raise RunDirError(f"{out} already holds a run; pass --resume to continue it or "
                          "choose another --out")
    if settings.resume and not has_checkpoint:
        raise RunDirError(f"nothing to resume: no checkpoint in {out}")
    if not settings.resume and (out / "clients").exists():
        raise RunDirError(f"{out}/clients holds client ledgers of an earlier run; "
                          "choose another --out")


# Settings a resumed run may change; every other one is the saved run's.
RESUMABLE = ("rounds", "resume", "command")


def resumed_settings(requested: RunSettings, saved: dict) -> RunSettings:
    """The saved settings of the run in `requested.out`, with only the rounds changed.

    The run folder given now is the run, wherever it was when the checkpoint was written (a
    moved or copied run keeps its own ledgers and files); a CKKS key folder that lay inside the
    old run folder is looked up at the same place inside this one. A setting asked for that
    differs from the saved one is refused rather than silently ignored.
    """
    out = Path(requested.out).resolve()
    old_out = Path(saved.get("out", "")).resolve()
    defaults, previous = RunSettings(), RunSettings.from_config(saved)
    changed = [spec.key for spec in RUN_SETTINGS
               if spec.name not in (*RESUMABLE, "out", "key_dir")
               and getattr(requested, spec.name) != getattr(defaults, spec.name)
               and getattr(requested, spec.name) != getattr(previous, spec.name)]
    if changed:
        raise RunDirError(f"--resume keeps the run's saved settings; only --rounds may change "
                          f"(asked to change: {', '.join(changed)})")
    key_dir = saved.get("key-dir", "")
    if key_dir and Path(key_dir).resolve().is_relative_to(old_out):
        key_dir = str(out / Path(key_dir).resolve().relative_to(old_out))
    return RunSettings.from_config({**saved, "out": str(out), "key-dir": key_dir,
                                    "rounds": requested.rounds, "resume": True,
                                    "command": requested.command or saved.get("command", "")})


def note_unaggregated_charges(settings: RunSettings, checkpoint: Checkpoint) -> None:
    """Say which devices' ledgers hold steps the checkpoint does not: a round they trained (and
    were charged for) was interrupted before the server recorded it. Keeping the charge is the
    safe choice, so their budget for the rest of the run is smaller; the resumed run says so on
    stderr and in metrics.json ("notes")."""
    found = []
    for client_id in range(settings.num_clients):  # a round-0 checkpoint holds no ledgers
        device = load_ledger(ledger_dir(settings), client_id, settings.accountant)
        saved = checkpoint.ledgers.get(client_id)
        extra = device.steps - (PrivacyLedger.from_state_dict(saved).steps if saved else 0)
        if extra > 0:
            found.append(f"client {client_id}: {extra} DP-SGD steps of round "
                         f"{checkpoint.round + 1} were charged to its ledger but never "
                         "aggregated (interrupted before the checkpoint); the charge is kept")
    for line in found:
        print(f"emofl simulate: note: {line}", file=sys.stderr)
    if found:
        checkpoint.notes.extend(found)
        save_checkpoint(settings.out, checkpoint)


# On a busy 2-core machine, one of Ray's head processes occasionally does not come up within
# Ray's fixed 30 s: the GCS never writes its port file, or the raylet never registers. Nothing
# has run yet, so the start is simply tried again.
RAY_START_ATTEMPTS = 3
_RAY_START_FAILURES = (
    ("Timed out waiting for file", "gcs_server_port"),
    ("The current node timed out during startup",),
)


def ray_did_not_start(error: BaseException) -> bool:
    """Whether `error`, raised by `ray.init`, says a Ray head process did not start in time."""
    return any(all(fragment in str(error) for fragment in failure)
               for failure in _RAY_START_FAILURES)


def start_ray(init_args: dict) -> None:
    """Start a fresh local Ray for the simulation engine, again if its head node stalls.

    Flower's Ray backend starts Ray only when none is running, so starting it here, before the
    ServerApp exists, lets a stalled start be retried without a half-started run behind it.
    """
    import ray  # heavy import: only when a run starts

    if ray.is_initialized():
        ray.shutdown()
    # As Flower does: Ray's workers get the driver's import path.
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}}
    for attempt in range(1, RAY_START_ATTEMPTS + 1):
        try:
            ray.init(runtime_env=runtime_env, **init_args)
            return
        except Exception as err:  # Ray raises a bare Exception when the raylet stalls
            if attempt == RAY_START_ATTEMPTS or not ray_did_not_start(err):
                raise
            ray.shutdown()  # stop whatever part of the head node did start
            logging.getLogger(__name__).warning(
                "Ray's head node did not start in time (%s); starting it again", err)


def _backend_config(settings: RunSettings) -> dict:
    cpus = max(1, min(os.cpu_count() or 1, settings.num_clients))
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "include_dashboard": False, "log_to_driver": False,
                      "logging_level": "ERROR"},
    }


def _quiet_frameworks() -> None:
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")


def simulate(settings: RunSettings, progress: bool = True) -> dict:
    """Run the simulation and write metrics.json, model.pt, model_card.json and plots.

    Returns a summary: final accuracy, rounds done, the largest client ε, wall time.
    """
    check_run_dir(settings)
    done = 0
    if settings.resume:
        checkpoint = load_checkpoint(settings.out)
        settings = resumed_settings(settings, checkpoint.settings)
        done = checkpoint.round
        note_unaggregated_charges(settings, checkpoint)
    # Fail fast on bad data in this process, before Ray starts workers that would load it.
    validation_faces(settings)
    atomic_io.make_dir(settings.out)  # one line naming a file in the way, or the reason
    settings = _with_keys(settings)
    check_federation(settings)
    overrides = {**settings.to_config(), "out": str(Path(settings.out).resolve())}
    bar = tqdm(total=settings.rounds, initial=done, desc="federated rounds", unit="round",
               disable=not progress)

    def on_round(entry: dict) -> None:
        bar.update(1)
        bar.set_postfix(acc=f"{entry['accuracy']:.3f}", eps=max_epsilon(entry))

    _quiet_frameworks()
    from flwr.simulation import run_simulation  # heavy import: only when a run starts

    started = time.perf_counter()
    backend_config = _backend_config(settings)
    with ctrl_c_ends_the_run(Path(settings.out), bar):
        try:
            start_ray(backend_config["init_args"])  # Flower's Ray backend uses a running Ray
            run_simulation(
                server_app=build_server_app(overrides, on_round),
                client_app=build_client_app(overrides),
                num_supernodes=settings.num_clients,
                backend_config=backend_config,
            )
        finally:
            bar.close()  # an error's line starts on a line of its own
    raise_if_failed(Path(settings.out))
    if settings.encrypted:
        write_decrypted_model(settings)
    return summarize(settings, time.perf_counter() - started)


def _with_keys(settings: RunSettings) -> RunSettings:
    """CKKS runs without --keys get a fresh key directory inside the run directory."""
    if not settings.encrypted or settings.key_dir:
        return settings
    key_dir = Path(settings.out) / "keys"
    if not (key_dir / "public_context.bin").exists():
        init_keys(key_dir)
    return RunSettings.from_config({**settings.to_config(), "key-dir": str(key_dir.resolve())})


def write_decrypted_model(settings: RunSettings) -> None:
    """As a key holder (a device would do this), decrypt the final aggregate and release it.

    The server cannot: it holds the encrypted Σ n_i·w_i only. The model is then evaluated and
    written exactly as the server releases a plaintext run's model.
    """
    history = load_checkpoint(settings.out)
    model = initial_model(settings)
    keys = load_client_keys(settings.key_dir)
    model.load_state_dict(global_state(ArrayRecord(history.model_state), model.state_dict(), keys))
    release_model(model, settings, history.rounds, history.ledgers)


def raise_if_failed(out: Path) -> None:
    """RunFailedError when a round of the run in `out` aggregated no update."""
    metrics_file = out / METRICS_FILE
    rounds = json.loads(metrics_file.read_text())["rounds"] if metrics_file.exists() else []
    failures = [reason for r in rounds if (reason := round_failure(r))]
    if failures:
        raise RunFailedError(f"the run failed: {failures[-1]}; no trained model was written "
                             f"(details in {metrics_file})")
