"""The machine's processes read from /proc: who started whom, and when.

A process's start time tells it from a later one given the same pid, and walking the parent
links from a process finds what it started, even after a middle process has gone (an orphan
is found by pid and start time noted before).
"""

import os
import signal
from pathlib import Path


def processes() -> dict[int, tuple[int, str]]:
    """Every process on this machine as pid: (parent's pid, start time), where the start time
    tells a process from a later one given the same pid; empty where there is no /proc."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        found[int(entry.name)] = (int(fields[1]), fields[19])
    return found


def descendants(table: dict[int, tuple[int, str]], root: int | None = None) -> dict[int, str]:
    """The processes of `table` that `root` (default: this process) started, directly or
    through others: pid: start time."""
    found: dict[int, str] = {}
    unvisited = [os.getpid() if root is None else root]
    while unvisited:
        parent = unvisited.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent and pid not in found]
        found.update((pid, table[pid][1]) for pid in children)
        unvisited.extend(children)
    return found


def kill(pid: int) -> None:
    """SIGKILL `pid`; nothing when it has ended already."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
