"""The federation's overhead: a run's wall time per round against its clients' training time.

Usage: python -m emofl.simulations.benchmarks.overhead RUN_DIR [RUN_DIR...]
Reads RUN_DIR/metrics.json. `client_seconds` is the sum over clients of the time each spent in
its train handler (data, DP-SGD, reply); with P clients trained in parallel, the best wall time
a round could take is about client_seconds / P. Round 1 includes starting the Ray workers.
"""

import argparse
import json
import os
import statistics
from pathlib import Path


def overhead(run_dir: Path, parallel: int) -> dict:
    rounds = json.loads((run_dir / "metrics.json").read_text())["rounds"]
    per_round = [{"round": r["round"], "wall_seconds": r["wall_seconds"],
                  "client_seconds": sum(c["train_seconds"] for c in r["clients"])}
                 for r in rounds]
    later = per_round[1:] or per_round
    wall = sum(r["wall_seconds"] for r in per_round)
    client = sum(r["client_seconds"] for r in per_round)
    return {
        "run": str(run_dir), "rounds": len(rounds), "parallel_clients": parallel,
        "total_wall_seconds": wall, "total_client_seconds": client,
        "wall_over_client_seconds_per_parallel_slot": wall / (client / parallel),
        "first_round": per_round[0],
        "median_later_round_wall_seconds": statistics.median(r["wall_seconds"] for r in later),
        "median_later_round_client_seconds": statistics.median(r["client_seconds"] for r in later),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                        help="clients trained at once (one per CPU in `emofl simulate`)")
    args = parser.parse_args()
    print(json.dumps([overhead(run, args.parallel) for run in args.runs], indent=2))


if __name__ == "__main__":
    main()
