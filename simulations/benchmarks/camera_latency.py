"""Delay from a frame's capture to its timeline row, for a camera-like source, beside the
formula t_f = C/f + t_n.

Usage: python -m emofl.simulations.benchmarks.camera_latency
           [--faces ../shared/data/fer2013/val] [--rates 30 120 480] [--workers 1 2]
           [--seconds 10] [--repeats 3] [--work runs/camera_latency] [--results docs/results]

There is no camera on this machine, so the source is a gallery video (640x480, 9 faces;
`simulations/gallery/video.py`) played with `emofl analyze VIDEO --realtime`: every frame is
delivered no sooner than its time in the file and read by the camera thread exactly as a
camera's would be, so frames the analysis cannot keep up with are dropped. What it does not
have is a driver's own buffer and the sensor's exposure and transfer time, which a real
camera adds before the frame reaches OpenCV.

For each source rate and worker count, `--repeats` runs: the p50 and p95 delays from the
run's summary (`capture_to_row_ms`; a frame's clock starts when the camera thread has read it)
and the share of frames dropped, beside the formula t_f = C/f + t_n. t_n is one frame's own
processing time after capture (the pipeline's stage times per frame, decoding excluded: it
happens before the frame is stamped), on an average frame and on a detection frame; C/f the
time a frame can wait: nothing while the analysis keeps up; when it cannot, up to
`LIVE_QUEUE` frames at the camera's rate f in the drop-oldest queue (newer frames push older
ones out, so none there is older than LIVE_QUEUE/f), plus, with `workers` > 1, one frame per
worker being prepared ahead, which leaves at the rate frames are processed. Medians over
repeats; every run in `camera_latency.json`, plot `camera_latency.png`.
"""

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from emofl.client.meeting.frame_feed import LIVE_QUEUE
from emofl.common.data.datasets import load_dataset
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

# A run that processed fewer frames than this share short of the video's could not keep up.
DROPPED_WHEN_SATURATED = 0.01


def run_realtime(video: Path, out: Path, workers: int, source_fps: float,
                 frames_in_video: int) -> dict:
    command = [sys.executable, "-m", "emofl", "analyze", str(video), "--out", str(out),
               "--realtime", "--workers", str(workers)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    run = json.loads((out / "summary.json").read_text())["run"]
    frames, stages = run["frames_processed"], run["stage_seconds"]
    after_capture = sum(v for k, v in stages.items() if k != "decode")
    t_n = after_capture / frames
    t_n_detection = (after_capture - stages["detect"]) / frames + stages["detect"] / max(
        run["detections"], 1)
    f_out = frames / run["pipeline_seconds"]
    dropped = 1 - frames / frames_in_video
    waiting = (LIVE_QUEUE / source_fps + (workers / f_out if workers > 1 else 0.0)
               if dropped > DROPPED_WHEN_SATURATED else 0.0)
    return {"command": shlex.join(["emofl", *command[3:]]), "frames": frames,
            "dropped": round(dropped, 4),
            "p50_ms": run["capture_to_row_ms"]["p50"], "p95_ms": run["capture_to_row_ms"]["p95"],
            "t_n_ms": round(1000 * t_n, 3), "t_n_detection_frame_ms": round(
                1000 * t_n_detection, 3), "f_out": round(f_out, 2),
            "wait_C_over_f_ms": round(1000 * waiting, 3),
            "formula_average_frame_ms": round(1000 * (waiting + t_n), 3),
            "formula_detection_frame_ms": round(1000 * (waiting + t_n_detection), 3)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['source_fps']:g} fps\n{r['workers']} worker(s)" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4.2))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] for r in rows], 0.4, label="measured p50")
    ax.bar([i + 0.2 for i in x], [r["p95_ms"] for r in rows], 0.4, label="measured p95")
    ax.scatter([i - 0.2 for i in x], [r["formula_average_frame_ms"] for r in rows],
               color="black", marker="_", s=400, zorder=3,
               label="t_f = C/f + t_n, average frame")
    ax.scatter([i + 0.2 for i in x], [r["formula_detection_frame_ms"] for r in rows],
               color="black", marker="x", zorder=3, label="t_f, detection frame")
    for i, r in enumerate(rows):
        ax.text(i, max(r["p95_ms"], r["formula_detection_frame_ms"]) * 1.04,
                f"dropped {r['dropped']:.0%}", ha="center", fontsize="small")
    ax.set_ylim(0, 1.3 * max(max(r["p95_ms"], r["formula_detection_frame_ms"]) for r in rows))
    ax.set_xticks(list(x), labels, fontsize="small")
    ax.set(ylabel="capture to timeline row (ms)",
           title="Camera-like source (a gallery video played in real time)")
    ax.legend(fontsize="small", ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarise(runs: list[dict], source_fps: float, workers: int) -> dict:
    keys = ("p50_ms", "p95_ms", "dropped", "t_n_ms", "t_n_detection_frame_ms", "f_out",
            "wait_C_over_f_ms", "formula_average_frame_ms", "formula_detection_frame_ms")
    row = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    return {"source_fps": source_fps, "workers": workers, "regime": "saturated" if row[
        "dropped"] > DROPPED_WHEN_SATURATED else "keeping up", **row, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default="../shared/data/fer2013/val")
    parser.add_argument("--rates", type=float, nargs="+", default=[30.0, 120.0, 480.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("runs/camera_latency"))
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)

    faces = load_dataset(args.faces)
    rows = []
    for rate in args.rates:
        spec = GallerySpec(fps=rate, seconds=args.seconds, seed=0)
        video = args.work / f"gallery_{rate:g}fps.mp4"
        if not video.exists():
            write_gallery_video(faces, video, spec)
        frames_in_video = round(spec.fps * spec.seconds)
        for workers in args.workers:
            runs = []
            for r in range(args.repeats):
                out = args.work / f"{video.stem}_w{workers}_{r}"
                shutil.rmtree(out, ignore_errors=True)
                runs.append(run_realtime(video, out, workers, rate, frames_in_video))
            row = summarise(runs, rate, workers)
            rows.append(row)
            print(f"{rate:g} fps, {workers} worker(s), {row['regime']}: p50 {row['p50_ms']} "
                  f"ms (formula {row['formula_average_frame_ms']}), p95 {row['p95_ms']} ms "
                  f"(formula, detection frame {row['formula_detection_frame_ms']}), dropped "
                  f"{row['dropped']:.1%}", flush=True)
    result = {"command": shlex.join(["python", "-m",
                                     "emofl.simulations.benchmarks.camera_latency",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d"), "live_queue": LIVE_QUEUE, "rows": rows}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "camera_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.results / "camera_latency.png")


if __name__ == "__main__":
    main()
