"""Kill what a process started once that process has ended: cleanup it cannot do itself.

`emofl simulate` on Ctrl-C must end at once, and Ray's processes must not outlive it. Stopping
Ray from inside the process races Flower's threads, which still call into Ray's core worker:
when one does after `ray.shutdown()`, Ray ends the whole process with status 1 before the
interrupted run can say what it kept (issue 10). So the process hands the list of what it
started to a reaper and exits; the reaper waits for it to be gone, then kills what still runs.

Usage (internal): python -m emofl.common.reaper OWNER_PID:START PID:START ...
"""

import os
import signal
import subprocess
import sys
import time

from emofl.common import process_table

# How long a reaper waits for its owner to end before it kills the list anyway.
OWNER_EXIT_WAIT_S = 30.0


def reap_after_exit(started: dict[int, str]) -> None:
    """Start a reaper that kills `started` (pid: start time) once this process has ended."""
    me = os.getpid()
    listed = [f"{pid}:{start}" for pid, start in
              [(me, process_table.start_time_of(me)), *started.items()]]
    subprocess.Popen([sys.executable, "-m", "emofl.common.reaper", *listed],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def _parse(listed: list[str]) -> dict[int, str]:
    return {int(pid): start for pid, start in (entry.split(":", 1) for entry in listed)}


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the Ctrl-C that ended the owner is not ours
    (owner, owner_start), *_ = _parse(argv[:1]).items()
    deadline = time.monotonic() + OWNER_EXIT_WAIT_S
    while process_table.is_running(owner, owner_start) and time.monotonic() < deadline:
        time.sleep(0.05)
    process_table.kill_those_still_running(_parse(argv[1:]))


if __name__ == "__main__":
    main(sys.argv[1:])
