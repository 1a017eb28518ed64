"""Peak memory of `emofl simulate` with N simulated clients: driver, Ray and its workers together.

Usage: python -m emofl.simulations.benchmarks.memory --clients 10 50 [--rounds 1] [-- SIMULATE ARGS]
Starts `emofl simulate` as a child process and samples, every 0.2 s, the proportional set size
(PSS, shared pages split among the processes sharing them, from /proc/PID/smaps_rollup) summed
over the whole process tree; reports the peak. Linux only.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_mib(root: int) -> float:
    tree, stack, total = _children(), [root], 0
    while stack:
        pid = stack.pop()
        total += _pss_kib(pid)
        stack.extend(tree.get(pid, []))
    return total / 1024


def peak_memory(clients: int, rounds: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "emofl", "simulate", "--clients", str(clients),
                   "--rounds", str(rounds), "--out", f"{tmp}/run", *extra]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, tree_pss_mib(child.pid))
            time.sleep(0.2)
        if child.returncode != 0:
            raise SystemExit(f"emofl simulate failed (exit {child.returncode}): {command}")
        return {"clients": clients, "rounds": rounds, "peak_pss_mib": round(peak, 1),
                "wall_seconds": round(time.perf_counter() - started, 1), "command": command[2:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("simulate_args", nargs=argparse.REMAINDER,
                        help="after --: more `emofl simulate` arguments")
    args = parser.parse_args()
    extra = [a for a in args.simulate_args if a != "--"]
    print(json.dumps([peak_memory(n, args.rounds, extra) for n in args.clients], indent=2))


if __name__ == "__main__":
    main()
