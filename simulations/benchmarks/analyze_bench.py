"""Speed, coverage and accuracy of `emofl analyze` on gallery videos built from FER2013 val faces.

Usage: python -m emofl.simulations.benchmarks.analyze_bench
           [--faces ../shared/data/fer2013/val] [--videos 3] [--seconds 60] [--repeats 3]
           [--naive-videos 1] [--work runs/analyze_bench] [--results docs/results]

For each gallery video (640x480, 30 fps, 3x3 tiles; `simulations/gallery/video.py`, seeds
0..videos-1, written under --work and never committed):
- the default command, `emofl analyze VIDEO --out DIR`, `--repeats` times: frames per second
  over the whole command (process start to exit: imports, model loading, plots included) and
  time per pipeline stage from its summary.json;
- the same with `--smoothing ema`, `--smoothing none` (the frame model alone) and
  `--workers 1` (everything on one thread: the default's speed-up from its threads);
- on the first `--naive-videos` videos, the naive pipeline: Haar on every full-size frame, the
  CNN on every face of every frame, no tracking, no smoothing.
Every timeline is scored against the video's ground truth (`simulations/gallery/scoring.py`):
coverage of (frame, participant) pairs, accuracy per face-frame, false rows, id stability.
Beside them: the frame model's accuracy on still images (all val faces, and the faces of each video
weighted by the frames they are shown in). Medians across runs and videos; all runs in the
JSON. Writes `analyze_bench.json` and `analyze_bench.png` into --results.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from emofl.common.data.datasets import load_dataset
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.model.frame_store import load_model
from emofl.simulations.gallery.scoring import read_truth, score_timeline, still_accuracy
from emofl.simulations.gallery.video import GallerySpec, write_gallery_video

CONFIGS: dict[str, list[str]] = {
    "temporal": [],
    "ema": ["--smoothing", "ema"],
    "none": ["--smoothing", "none"],
    "one-thread": ["--workers", "1"],
    "naive": ["--smoothing", "none", "--no-tracking", "--detect-every", "1", "--detect-width",
              "0", "--change-threshold", "0", "--analysis-fps", "0"],
}
FPS_TARGET = 200  # issue 14: the whole command on the 20-second gallery


def still_predictions(faces) -> np.ndarray:
    """The shipped frame model's class for every face as it is (no video in between)."""
    model, _ = load_model()
    with torch.inference_mode():
        return np.concatenate([
            model(torch.from_numpy(preprocess_faces(faces.images[i : i + 512]))).argmax(1).numpy()
            for i in range(0, len(faces), 512)])


def run_analyze(video: Path, out: Path, extra: list[str]) -> dict:
    """One whole `emofl analyze` command, timed from outside; its summary's run section."""
    command = [sys.executable, "-m", "emofl", "analyze", str(video), "--out", str(out), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    run = json.loads((out / "summary.json").read_text())["run"]
    return {"command": shlex.join(["emofl", *command[3:]]), "wall_s": round(wall, 3),
            "fps_whole_command": round(run["frames_processed"] / wall, 2),
            "fps_pipeline": run["pipeline_fps"], "frames": run["frames_processed"],
            "stage_ms_per_frame": {k: round(1000 * v / run["frames_processed"], 3)
                                   for k, v in run["stage_seconds"].items()},
            "faces_classified": run["faces_classified"], "faces_reused": run["faces_reused"],
            "load_average_after": round(os.getloadavg()[0], 2)}


def bench_video(video: Path, work: Path, repeats: int, naive: bool, spec: GallerySpec) -> dict:
    truth = read_truth(video.with_name(f"{video.stem}_truth.csv"))
    runs: dict[str, list[dict]] = {}
    for name, extra in CONFIGS.items():
        if name == "naive" and not naive:
            continue
        count = repeats if name == "temporal" else 1
        for r in range(count):
            out = work / f"{video.stem}_{name}_{r}"
            result = run_analyze(video, out, extra)
            result["score"] = score_timeline(out / "timeline.csv", truth, spec)
            runs.setdefault(name, []).append(result)
            print(f"{video.name} {name} run {r}: {result['fps_whole_command']} fps, "
                  f"coverage {result['score']['coverage']}, accuracy "
                  f"{result['score']['accuracy_covered']}", flush=True)
    return {"video": str(video), "runs": runs}


def median_of(videos: list[dict], name: str, pick) -> float | None:
    values = [pick(run) for v in videos for run in v["runs"].get(name, [])]
    return round(statistics.median(values), 4) if values else None


def summarise(videos: list[dict], still_val: float, still_gallery: list[float]) -> dict:
    table = {}
    for name in CONFIGS:
        if not any(name in v["runs"] for v in videos):
            continue
        table[name] = {
            "fps_whole_command": median_of(videos, name, lambda r: r["fps_whole_command"]),
            "fps_pipeline": median_of(videos, name, lambda r: r["fps_pipeline"]),
            "coverage": median_of(videos, name, lambda r: r["score"]["coverage"]),
            "accuracy_covered": median_of(videos, name, lambda r: r["score"]["accuracy_covered"]),
            "accuracy_all_pairs": median_of(videos, name,
                                            lambda r: r["score"]["accuracy_all_pairs"]),
            "false_rows": median_of(videos, name, lambda r: r["score"]["false_rows"]),
            "stage_ms_per_frame": {
                stage: median_of(videos, name, lambda r, s=stage: r["stage_ms_per_frame"][s])
                for stage in next(v for v in videos if name in v["runs"])["runs"][name][0][
                    "stage_ms_per_frame"]},
        }
    return {"still_image_accuracy_val": round(still_val, 4),
            "still_image_accuracy_gallery_weighted": round(statistics.median(still_gallery), 4),
            "configs": table}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = summary["configs"]
    names = list(configs)
    fig, (fps_ax, stage_ax, acc_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    fps_ax.bar(names, [configs[n]["fps_whole_command"] for n in names], color="tab:blue")
    fps_ax.axhline(FPS_TARGET, color="tab:red", ls="--", label=f"target {FPS_TARGET} fps")
    fps_ax.set(ylabel="frames per second (whole command)", title="Throughput, 640x480 video")
    fps_ax.legend()
    bottom = np.zeros(len(names))
    for stage in configs[names[0]]["stage_ms_per_frame"]:
        values = np.array([configs[n]["stage_ms_per_frame"].get(stage) or 0 for n in names])
        stage_ax.bar(names, values, bottom=bottom, label=stage)
        bottom += values
    stage_ax.set(ylabel="ms per frame", title="Pipeline time per stage")
    stage_ax.legend(fontsize="small")
    labels = ["still (val)", "still (gallery)", *names]
    values = [summary["still_image_accuracy_val"],
              summary["still_image_accuracy_gallery_weighted"],
              *(configs[n]["accuracy_covered"] for n in names)]
    bars = acc_ax.bar(labels, values, color=["gray", "gray", *["tab:green"] * len(names)])
    for bar, name in zip(bars[2:], names, strict=True):
        acc_ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01,
                    f"cov {configs[name]['coverage']:.0%}", ha="center", fontsize="small")
    acc_ax.axhline(summary["still_image_accuracy_gallery_weighted"] - 0.05, color="tab:red",
                   ls="--", label="still (gallery) − 5 points")
    acc_ax.set(ylabel="accuracy per face-frame", ylim=(0, 0.7), title="Accuracy and coverage")
    acc_ax.legend(fontsize="small")
    acc_ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default="../shared/data/fer2013/val")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-videos", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/analyze_bench"))
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)

    faces = load_dataset(args.faces)
    predictions = still_predictions(faces)
    videos, still_gallery = [], []
    for seed in range(args.videos):
        spec = GallerySpec(seconds=args.seconds, seed=seed)
        video = args.work / f"gallery_{seed}.mp4"
        truth_path = video.with_name(f"{video.stem}_truth.csv")
        if not (video.exists() and truth_path.exists()):
            write_gallery_video(faces, video, spec)
        still_gallery.append(still_accuracy(read_truth(truth_path), predictions))
        for old in args.work.glob(f"{video.stem}_*"):  # earlier runs' output folders
            if old.is_dir():
                shutil.rmtree(old)
        videos.append(bench_video(video, args.work, args.repeats, seed < args.naive_videos,
                                  spec))
    summary = summarise(videos, float((predictions == faces.labels).mean()), still_gallery)
    summary.update({
        "command": shlex.join(["python", "-m", "emofl.simulations.benchmarks.analyze_bench",
                               *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, shared with other jobs",
        "video": {"size": "640x480", "fps": 30, "tiles": 9, "seconds": args.seconds,
                  "videos": args.videos},
        "still_image_accuracy_per_video": still_gallery,
        "videos": videos,
    })
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "analyze_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, args.results / "analyze_bench.png")
    print(json.dumps({k: summary[k] for k in ("still_image_accuracy_val",
                                              "still_image_accuracy_gallery_weighted",
                                              "configs")}, indent=2))


if __name__ == "__main__":
    main()
