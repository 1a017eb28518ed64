"""The machine's processes read from /proc: who started whom, and when.

A process's start time tells it from a later one given the same pid, and walking the parent
links from a process finds what it started, even after a middle process has gone (an orphan
is found by pid and start time noted before).
"""

import os
import signal
from pathlib import Path

_STATE, _PARENT, _START_TIME = 0, 1, 19
"""Positions in /proc/PID/stat after the command name (proc(5): fields 3, 4 and 22)."""


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name, which may itself hold spaces and
    parentheses; OSError when the process has ended."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def processes() -> dict[int, tuple[int, str]]:
    """Every process on this machine as pid: (parent's pid, start time), where the start time
    tells a process from a later one given the same pid; empty where there is no /proc."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = _stat_fields(entry.name)
        except OSError:  # it ended while we looked
            continue
        found[int(entry.name)] = (int(fields[_PARENT]), fields[_START_TIME])
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


def is_running(pid: int, start_time: str) -> bool:
    """Whether the process `pid` that started at `start_time` still runs (a zombie does not)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return False
    return fields[_START_TIME] == start_time and fields[_STATE] != "Z"


def start_time_of(pid: int) -> str:
    """The start time of the running process `pid`, as processes() gives it."""
    return _stat_fields(pid)[_START_TIME]


def kill_those_still_running(started: dict[int, str]) -> None:
    """SIGKILL each process of `started` (pid: start time) that still runs as that process: an
    orphan has a new parent by now, and a pid given to a later process is left alone."""
    running = processes()
    for pid, start_time in started.items():
        if running.get(pid, (0, ""))[1] == start_time:
            kill(pid)


def kill(pid: int) -> None:
    """SIGKILL `pid`; nothing when it has ended already."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
