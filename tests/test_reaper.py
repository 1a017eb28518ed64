"""The reaper kills what a process started once that process has ended, and nothing else."""

import subprocess
import sys
import time

from emofl.common import process_table

# A process that starts two sleepers, hands the first (and, under a start time that is not
# its own, the second) to a reaper, prints their pids and exits at once.
OWNER = """
import subprocess, sys
from emofl.common import process_table
from emofl.common.reaper import reap_after_exit
first, second = (subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
                 for _ in range(2))
reap_after_exit({first.pid: process_table.start_time_of(first.pid), second.pid: "0"})
print(first.pid, second.pid, flush=True)
"""


def _ended_within(pid: int, start_time: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process_table.is_running(pid, start_time):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_what_the_owner_handed_over_is_killed_once_it_has_ended_and_nothing_else():
    owner = subprocess.run([sys.executable, "-c", OWNER], capture_output=True, text=True,
                           timeout=60, check=True)
    first, second = map(int, owner.stdout.split())
    table = process_table.processes()
    first_start, second_start = table[first][1], table[second][1]
    try:
        assert _ended_within(first, first_start, 30)
        # The second was handed over under another start time: a later process given the same
        # pid, which the reaper must leave alone.
        time.sleep(1)
        assert process_table.is_running(second, second_start)
    finally:
        for pid in (first, second):
            process_table.kill(pid)
