"""Long-running helper processes (Flower's SuperLink and SuperNode, nginx) started and stopped
as a group, with bounded waits.

Each process runs in its own session (process group), its output in a log file, so that
stopping it reaches every child it started (Flower's SuperExec, ClientApp and ServerApp
processes; Flower detaches some into sessions of their own, so their process ids are collected
from /proc too). `ProcessGroup` stops everything it started when its `with` block ends, however
it ends: SIGTERM to each group, SIGKILL to what is left after a grace period. When the command
itself is killed outright (SIGKILL, the OOM killer), where nothing of it runs to clean up, Linux
sends each helper SIGTERM (`PR_SET_PDEATHSIG`): a device's SuperNode never goes on training
after the `emofl client` its owner stopped.
"""

import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from emofl.common import process_table
from emofl.common.errors import UserError

STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProcessError(UserError):
    """A helper process that would not start, or stopped; the message names it and its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """ProcessError naming `host:port` when it cannot be listened on (something listens there)."""
    if problem := bind_problem(host, port):
        raise ProcessError(f"cannot listen on {host}:{port}: {problem}; choose another --port")


def bind_problem(host: str, port: int) -> str:
    """Why `host:port` cannot be bound, found by trying with a plain socket (as gRPC does,
    with SO_REUSEADDR): the port in use, an address not of this host, or the system's reason;
    "" when it can be."""
    name = host.strip("[]")
    try:
        addresses = socket.getaddrinfo(name or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return f"{host} is not a known host name or address"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return f"port {port} is in use (another server listens on it)"
                if err.errno == errno.EADDRNOTAVAIL:
                    return f"{host} is not an address of this host"
                return err.strerror or type(err).__name__
    return ""


def _dies_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when the thread starting it ends (the
    commands start their helpers from the main thread, so: when this process ends); None
    elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    parent = os.getpid()

    def set_up() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # this process died before the request took effect
            os._exit(1)

    return set_up


def log_tail(log: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined into one line."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    kept = [_ANSI.sub("", line).strip() for line in text[-lines * 4:]]
    return " | ".join(line for line in kept if line)[-400:]


class ProcessGroup:
    """The helper processes of one command, stopped together (see the module docstring)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        """Start `command` in a new session, stdout and stderr appended to `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                       start_new_session=True,
                                       preexec_fn=_dies_with_this_process())
        self.started.append((name, process, log))
        return process

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `ready` until it holds; ProcessError when a started process exits first or
        `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process, log in self.started:
                if process.poll() is not None:
                    raise ProcessError(f"{name} exited with status {process.returncode} before "
                                       f"{what} (log {log}: {log_tail(log)})")
            if time.monotonic() > deadline:
                raise ProcessError(f"{what} did not happen within {timeout:.0f} s")
            time.sleep(0.2)

    def first_exit(self) -> tuple[str, int] | None:
        """(name, status) of a started process that has exited, or None while all run."""
        for name, process, _ in self.started:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        """SIGTERM every started process group, then SIGKILL what is left after the grace,
        descendants in other sessions included."""
        table = process_table.processes()
        family = {pid: started for _, process, _ in self.started
                  for pid, started in process_table.descendants(table, process.pid).items()}
        for _, process, _ in reversed(self.started):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for _, process, _ in reversed(self.started):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
        process_table.kill_those_still_running(family)
        self.started.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
