"""Real processes for the deployment tests: starting and stopping `emofl` commands in their
own process groups, bounded waits, devices made and enrolled in the test's process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from emofl.client.device.device_folder import init_device
from emofl.server.deployment.enrollment import enroll
from emofl.server.deployment.server_folder import ServerFolder

READY_S = 120
# A federation small enough for a test: a few faces per device, a narrow model, one step.
RUN_SETTINGS = ("synthetic-size=16", "model-width=8", "local-steps=1", "batch-size=16")


def start(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`emofl ARGS` in a process group of its own, output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "emofl", *args], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)


def stop(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(condition, what: str, timeout: float, process: subprocess.Popen | None = None):
    """Poll `condition` until it holds; fail after `timeout` s or when `process` exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"{what}: the process exited"
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.5)


def start_server(root: Path, port: int, log: Path) -> subprocess.Popen:
    """`emofl server start` for the server folder `root` on 127.0.0.1:`port`, once it is
    ready (its endpoint file written); stopped again when it does not get ready."""
    process = start("server", "start", "--dir", str(root), "--port", str(port), "--bind",
                    "127.0.0.1", log=log)
    try:
        wait_for(lambda: (root / "endpoint.json").exists(), "the server started", READY_S,
                 process)
    except BaseException:
        stop(process)
        raise
    return process


def make_device(base: Path, name: str, epsilon: float = 8.0) -> Path:
    init_device(base / name, name=name, epsilon=epsilon, delta=1e-5)
    return base / name


def enroll_device(folder: ServerFolder, device: Path, key_dir: Path | None = None) -> dict:
    """Enroll in this process (the command itself is tested in test_deployment_federation);
    the bundle is written beside the device folder."""
    return enroll(folder, device / "request.json",
                  device.parent / f"{device.name}.bundle.json", key_dir)


def run_setting_args() -> list[str]:
    return [arg for item in RUN_SETTINGS for arg in ("--set", item)]
