"""How one Ctrl-C ends `emofl simulate`: the completed rounds kept, one line said, Ray reaped."""

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
from emofl.common.reaper import reap_after_exit
from emofl.common.storage import atomic_io
from emofl.server.federated.checkpoint import load_checkpoint

# How a Ctrl-C ends a run: the shell's status of a process ended by SIGINT, as `emofl` uses.
INTERRUPTED_EXIT = 128 + signal.SIGINT


@contextmanager
def ctrl_c_ends_the_run(out: Path, bar: tqdm) -> Iterator[None]:
    """While Ray and the ServerApp run, a Ctrl-C (SIGINT) ends the process and its Ray.

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
    """Say in one line which rounds are kept, end the process with INTERRUPTED_EXIT, and leave
    Ray's processes to a reaper that kills them once this process has gone.

    The completed rounds are safe as they are: checkpoint, metrics and ledgers are each
    replaced atomically. Writes stop first, so that nothing the ServerApp thread does from now
    on is recorded. Ray is not stopped from here: Flower's threads still call into Ray, and a
    call after `ray.shutdown()` makes Ray end the process with status 1 and no word
    (emofl.common.reaper). Ray's workers block SIGINT: the Ctrl-C itself reaches this process
    only. stderr goes to /dev/null: Flower's threads would report what is cut short.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
    atomic_io.stop_writes()
    bar.close()
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    problem = ""
    try:
        reap_after_exit(process_table.descendants(process_table.processes()))
    except Exception as err:  # the line below and the exit must come whatever happens
        problem = f"; Ray's processes may still run (their reaper failed: {err})"
    line = (f"emofl simulate: interrupted; {kept_rounds(out)} completed round(s) are kept in "
            f"{out} (continue with --resume --out {out}){problem}\n")
    os.write(terminal, line.encode())
    os._exit(INTERRUPTED_EXIT)  # the ServerApp thread cannot be stopped: leave without it


def kept_rounds(out: Path) -> int:
    """The rounds the checkpoint in `out` holds (0 when there is none or it cannot be read)."""
    try:
        checkpoint = load_checkpoint(out)
    except Exception:  # said in the one line that must be printed whatever happens
        return 0
    return checkpoint.round if checkpoint else 0
