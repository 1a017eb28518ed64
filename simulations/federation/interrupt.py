"""How one Ctrl-C ends `emofl simulate`: Ray stopped, the completed rounds kept, one line said."""

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from emofl.common import process_table
from emofl.common.storage import atomic_io
from emofl.server.federated.checkpoint import load_checkpoint

# How a Ctrl-C ends a run: the shell's status of a process ended by SIGINT, as `emofl` uses;
# and how long Ray may take to stop before what is left of it is killed.
INTERRUPTED_EXIT = 128 + signal.SIGINT
RAY_STOP_SECONDS = 10.0


@contextmanager
def ctrl_c_ends_the_run(out: Path, bar: tqdm) -> Iterator[None]:
    """While Ray and the ServerApp run, a Ctrl-C (SIGINT) stops Ray and ends the process.

    Flower runs the ServerApp in a thread that a KeyboardInterrupt in the main thread leaves
    waiting for replies that never come, so the interpreter would hang at exit joining it.
    Outside the main thread (where no handler can be installed) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: end_interrupted_run(out, bar))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def end_interrupted_run(out: Path, bar: tqdm) -> NoReturn:
    """Stop Ray, say in one line which rounds are kept, end the process with INTERRUPTED_EXIT.

    The completed rounds are safe as they are: checkpoint, metrics and ledgers are each
    replaced atomically. Writes stop first: stopping Ray fails the clients' calls in progress,
    which the ServerApp thread would otherwise record as a failed round. Flower's threads
    report each failed call with a traceback, so stderr goes to /dev/null while Ray stops.
    Ray's workers block SIGINT: the Ctrl-C itself reaches this process only. Whatever this
    process started and is still running once Ray stopped, or did not stop in time, is killed
    (Ray's dashboard and runtime-env agents outlive a raylet that was stopped by force).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
    atomic_io.stop_writes()
    bar.close()
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    problem = ""
    try:
        _stop_ray_and_what_it_started()
    except Exception as err:  # the line below and the exit must come whatever happens
        problem = f"; stopping Ray failed ({type(err).__name__}: {err})"
    line = (f"emofl simulate: interrupted; {kept_rounds(out)} completed round(s) are kept in "
            f"{out} (continue with --resume --out {out}){problem}\n")
    os.write(terminal, line.encode())
    os._exit(INTERRUPTED_EXIT)  # the ServerApp thread cannot be stopped: leave without it


def _stop_ray_and_what_it_started() -> None:
    """Stop Ray (bounded), then kill whatever this process started that still runs."""
    started = process_table.descendants(process_table.processes())
    stopper = threading.Thread(target=_stop_ray, daemon=True)
    stopper.start()
    stopper.join(RAY_STOP_SECONDS)
    # An orphan of a stopped raylet has another parent now: it is found by pid and start time.
    running = process_table.processes()
    for pid, start_time in started.items():
        if running.get(pid, (0, ""))[1] == start_time:
            process_table.kill(pid)


def _stop_ray() -> None:
    import ray

    ray.shutdown()


def kept_rounds(out: Path) -> int:
    """The rounds the checkpoint in `out` holds (0 when there is none or it cannot be read)."""
    try:
        checkpoint = load_checkpoint(out)
    except Exception:  # said in the one line that must be printed whatever happens
        return 0
    return checkpoint.round if checkpoint else 0
