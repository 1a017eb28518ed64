"""Whole-command time of `emofl analyze` on a 1-second clip, per inference runtime (issue #14).

Usage: python -m emofl.simulations.benchmarks.edge_start [--repeats 5] [--work runs/edge_start]
           [--results docs/results]
The clip is a 640x480, 30 fps, 3x3 gallery of synthetic faces (`simulations/gallery/video.py`).
Each repeat runs `emofl analyze CLIP --out DIR --runtime R` for every runtime, interleaved so
that machine noise hits each alike, and times it from process start to exit. The phases inside
the command come from its own output (`phase_seconds`: models, source and pipeline, summary,
plots); what the whole command took beyond them is the interpreter's start, the imports,
argument parsing and exit. Medians over the repeats go to edge_start.json and edge_start.png
in --results.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from emofl.common.data.synthetic import make_synthetic_faces
from emofl.common.edge.files import RUNTIMES
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

CLIP = GallerySpec(seconds=1.0, segment_seconds=(0.5, 1.0), absent_seconds=0)


PHASES = ("start and imports", "models", "pipeline", "summary", "plots")


def timed_analyze(clip: Path, out: Path, runtime: str) -> dict:
    """One whole `emofl analyze` command: its wall seconds, the pipeline loop's, and each
    phase's."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "emofl", "analyze", str(clip), "--out",
                           str(out), "--runtime", runtime], check=True, capture_output=True)
    wall = time.perf_counter() - started
    run = json.loads((out / "summary.json").read_text())["run"]
    phases = json.loads(done.stdout)["phase_seconds"]
    return {"command_seconds": wall, "pipeline_seconds": run["pipeline_seconds"],
            "phase_seconds": {"start and imports": wall - sum(phases.values()), **phases}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("runs/edge_start"))
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    clip = args.work / "clip_1s.mp4"
    write_gallery_video(make_synthetic_faces(200, seed=0), clip, CLIP)
    runs: dict[str, list[dict]] = {runtime: [] for runtime in RUNTIMES}
    for _ in range(args.repeats):
        for runtime in RUNTIMES:
            runs[runtime].append(timed_analyze(clip, args.work / runtime, runtime))
    medians = {runtime: {**{key: statistics.median(r[key] for r in results)
                            for key in ("command_seconds", "pipeline_seconds")},
                         "phase_seconds": {phase: statistics.median(
                             r["phase_seconds"][phase] for r in results) for phase in PHASES}}
               for runtime, results in runs.items()}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "edge_start.json").write_text(json.dumps(
        {"clip": vars(CLIP), "repeats": args.repeats, "medians": medians, "runs": runs},
        indent=2) + "\n")
    _plot(medians, args.results / "edge_start.png")
    print(json.dumps(medians, indent=2))


def _plot(medians: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(medians)
    figure, axes = plt.subplots(figsize=(6, 3))
    left = [0.0] * len(names)
    for phase in PHASES:
        widths = [medians[n]["phase_seconds"][phase] for n in names]
        axes.barh(names, widths, left=left, label=phase)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    axes.axvline(1.5, color="k", linestyle="--", linewidth=1, label="target 1.5 s")
    axes.set_xlabel("seconds, whole `emofl analyze` of a 1-second clip (median per phase)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
