"""Wall time of `emofl audit` on a finished run (issue #13, item 5).

Usage: python -m emofl.simulations.benchmarks.audit_time RUN_DIR [--repeats 3]
Runs `emofl audit RUN_DIR --json` `--repeats` times as a user would (process start to exit:
signatures, hash chains, Merkle roots against the tree heads, ε by the run's accountant and by
dp-accounting's PLD) and prints the median, the clients and ledger entries it checked, and
whether the audit passed.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    seconds, result = [], None
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "emofl", "audit", args.run_dir, "--json"],
                                capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
    report = json.loads(result.stdout)
    print(json.dumps({"run": args.run_dir, "passed": report.get("passed"),
                      "exit_status": result.returncode,
                      "median_seconds": round(statistics.median(seconds), 2),
                      "seconds": [round(s, 2) for s in seconds],
                      "clients": len(report.get("clients", [])),
                      "entries": sum(c.get("rounds", 0) for c in report.get("clients", []))},
                     indent=2))


if __name__ == "__main__":
    main()
