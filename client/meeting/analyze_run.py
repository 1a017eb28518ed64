"""One `emofl analyze` run: check the inputs, load the models, run the pipeline, write the outputs.

Everything a user can get wrong (weights, output folder, model files, the video or camera) is
checked before the output folder is created, so a bad command leaves nothing behind; a folder
that already holds any of these outputs is refused, so no earlier result is overwritten. Files
written to `out`: timeline.csv, summary.json, plots/*.png, and annotated.mp4 only with
`save_annotated`.
"""

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emofl.client.inference.runtime_models import (
    FrameModel,
    load_frame_model,
    load_temporal_smoother,
)
from emofl.client.meeting.analytics import Alert, MeetingAnalytics, parse_weights
from emofl.client.meeting.analyzer import AnalyzerSettings, MeetingAnalyzer, RunStats
from emofl.client.meeting.annotated_video import AnnotatedVideo
from emofl.client.meeting.crop_classifier import AdaptiveFaceClassifier
from emofl.client.meeting.report import TimelineWriter, write_plots, write_summary
from emofl.client.meeting.video_source import VideoSource, open_source
from emofl.common.data.classes import CLASSES
from emofl.common.edge.files import RUNTIMES
from emofl.common.errors import SettingsError, UserError
from emofl.common.model.model_cards import SHIPPED_MODEL, SHIPPED_TEMPORAL_MODEL, read_card
from emofl.common.model.smoothers import EmaSmoother, PassThrough, Smoother
from emofl.common.protocol.choices import SMOOTHING

# When the temporal model's card does not say: the EMA's weight of a new step, and the rate
# (steps per second) the model was trained at.
DEFAULT_EMA_ALPHA = 0.3
DEFAULT_ANALYSIS_FPS = 10.0
OUTPUT_FILES = ("timeline.csv", "summary.json")
PLOTS_FOLDER = "plots"
ANNOTATED_FILE = "annotated.mp4"


@dataclass(frozen=True)
class AnalyzeOptions:
    """A whole run: source (`video` or `camera`; `realtime` plays the video as a camera would
    deliver it), output folder, models and analytics."""

    out: Path
    video: str | None = None
    camera: int | None = None
    realtime: bool = False
    model: str | None = None
    temporal_model: str | None = None
    runtime: str = RUNTIMES[0]
    smoothing: str = "temporal"
    ema_alpha: float | None = None
    weights: str = ""
    window_s: float = 10.0
    alert_seconds: float = 10.0
    change_threshold: float = 4.0
    save_annotated: bool = False
    pipeline: AnalyzerSettings = field(default_factory=AnalyzerSettings)
    progress: bool = True
    command: str = ""


def run_analysis(options: AnalyzeOptions) -> dict:
    """Analyse the meeting and write every output; returns where they are, a few totals and
    the seconds each phase took (models, source and pipeline, summary, plots)."""
    phases = PhaseClock()
    if options.smoothing not in SMOOTHING:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING)}")
    analytics = MeetingAnalytics(parse_weights(options.weights), options.window_s,
                                 options.alert_seconds)
    out = Path(options.out)
    _check_out_folder(out)
    # One inference thread: a batch of a few 48x48 faces gains nothing from more, and the
    # other core is left to OpenCV (decoding, detection).
    model = load_frame_model(options.runtime, options.model, _note, threads=1,
                             temporal_model=options.temporal_model)
    model_card = read_card(options.model or SHIPPED_MODEL)
    smoother, smoothing, rate = _smoother(options)
    settings = options.pipeline
    if settings.analysis_fps is None:
        settings = replace(settings, analysis_fps=rate)
    phases.lap("models")
    with open_source(options.video, options.camera, options.realtime) as source:
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        stats, annotated_path = _run_pipeline(options, settings, source, model, smoother,
                                              analytics, out)
        run = _describe_run(source, stats, time.perf_counter() - started, settings, options,
                            analytics)
    run.update(_excluded_not_found(settings.exclude, stats.tracked_ids))
    run.update({"frame_model": options.model or "shipped",
                "frame_model_validation_accuracy": model_card.get("validation", {}).get(
                    "accuracy"),
                "runtime": options.runtime, "smoothing": smoothing,
                "command": options.command})
    phases.lap("pipeline")
    summary = write_summary(out / "summary.json", analytics, run)
    phases.lap("summary")
    plots = write_plots(out / PLOTS_FOLDER, analytics)
    phases.lap("plots")
    return {
        "out": str(out),
        "frames_processed": stats.frames,
        "participants": len(summary["participants"]),
        "alerts": len(summary["alerts"]),
        "pipeline_fps": run["pipeline_fps"],
        "ended_early": run["ended_early"],
        "interrupted": run["interrupted"],
        "warnings": run["warnings"],
        "files": [str(out / name) for name in OUTPUT_FILES] + [str(p) for p in plots]
                 + ([str(annotated_path)] if annotated_path else []),
        "phase_seconds": phases.seconds,
    }


class PhaseClock:
    """Wall seconds of consecutive phases: each `lap` closes the phase begun by the last."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 4)
        self._last = now


def _check_out_folder(out: Path) -> None:
    """Refuse an `out` that is not a folder, or one that holds any output of an analysis."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is not a folder; choose another --out")
    taken = [name for name in (*OUTPUT_FILES, PLOTS_FOLDER, ANNOTATED_FILE)
             if (out / name).exists()]
    if taken:
        raise UserError(f"{out} already holds an analysis ({taken[0]}); choose another --out")


def _excluded_not_found(exclude: frozenset[int], tracked: set[int]) -> dict:
    """The excluded ids no face was ever tracked under, and a warning for each (also printed):
    an id that never appears is most likely a mistaken one, leaving its person unexcluded."""
    missing = sorted(exclude - tracked)
    warnings = [f"--exclude {participant}: no participant {participant} was ever tracked "
                f"(ids are given in reading order of first detection, from 0); check the ids "
                f"in a run without --exclude" for participant in missing]
    for warning in warnings:
        tqdm.write(f"emofl analyze: warning: {warning}", file=sys.stderr)
    return {"exclude_not_found": missing, "warnings": warnings}


def _describe_run(source: VideoSource, stats: RunStats, elapsed: float,
                  settings: AnalyzerSettings, options: AnalyzeOptions,
                  analytics: MeetingAnalytics) -> dict:
    """The `run` section of summary.json: the source, what was processed, how fast, how."""
    return {
        "source": source.name,
        "live": source.live,
        "width": source.width,
        "height": source.height,
        "native_fps": source.native_fps,
        "frames_declared": source.frame_count,
        "frames_read": source.frames_read,
        "frames_processed": stats.frames,
        "duration_s": round(stats.last_time_s, 3),
        # the stream stopped before its declared length (not because of Ctrl-C)
        "ended_early": bool(not stats.interrupted and source.frame_count
                            and source.frames_read < source.frame_count),
        "interrupted": stats.interrupted,
        "pipeline_seconds": round(elapsed, 3),
        "pipeline_fps": round(stats.frames / elapsed, 2) if elapsed > 0 else None,
        "stage_seconds": stats.seconds,
        **_latency(stats.capture_to_row_s),
        "detections": stats.detections,
        "faces_classified": stats.faces_classified,
        "faces_reused": stats.faces_reused,
        "settings": {**asdict(settings), "exclude": sorted(settings.exclude),
                     "change_threshold": options.change_threshold,
                     "window_s": options.window_s, "alert_seconds": options.alert_seconds,
                     "weights": dict(zip(CLASSES, analytics.weights.tolist(), strict=True))},
    }


def _latency(delays: list[float]) -> dict:
    """A camera's delay from a frame's capture to its timeline rows: median and 95th
    percentile in milliseconds (nothing for a file, whose frames wait for no one)."""
    if not delays:
        return {}
    p50, p95 = np.percentile(np.asarray(delays) * 1000.0, [50, 95])
    return {"capture_to_row_ms": {"p50": round(float(p50), 2), "p95": round(float(p95), 2),
                                  "frames": len(delays)}}


def _run_pipeline(options: AnalyzeOptions, settings: AnalyzerSettings, source: VideoSource,
                  model: FrameModel, smoother: Smoother, analytics: MeetingAnalytics, out: Path):
    """Run the analyzer with its timeline (and annotated video); both files are closed even
    when the run fails, so what was written stays readable."""
    timeline = TimelineWriter(out / "timeline.csv")
    annotated = None
    try:
        if options.save_annotated:
            rate = min(settings.max_fps or source.native_fps, source.native_fps)
            annotated = AnnotatedVideo(out / ANNOTATED_FILE, rate, source.width, source.height,
                                       consenting_only=bool(settings.exclude))
        classifier = AdaptiveFaceClassifier(model, change_threshold=options.change_threshold)
        analyzer = MeetingAnalyzer(settings, classifier, smoother, analytics, timeline,
                                   annotated, on_alert=_print_alert)
        stats = analyzer.run(source, progress=options.progress)
    finally:
        timeline.close()
        if annotated is not None:
            annotated.close()
    return stats, (annotated.path if annotated else None)


def _smoother(options: AnalyzeOptions) -> tuple[Smoother, dict, float]:
    """The smoother asked for, its description for the summary, and the analysis rate.

    The rate is the one the temporal model was trained at, whatever the smoothing, so that
    the three compare like for like; the EMA's alpha is the one chosen for that model (its
    card says both).
    """
    card = read_card(options.temporal_model or SHIPPED_TEMPORAL_MODEL)
    rate = float(card.get("training", {}).get("sequence_settings", {}).get(
        "fps", DEFAULT_ANALYSIS_FPS))
    if options.smoothing == "none":
        return PassThrough(), {"method": "none"}, rate
    if options.smoothing == "temporal":
        smoother = load_temporal_smoother(options.runtime, options.model,
                                          options.temporal_model, _note)
        return smoother, {"method": "temporal", "model": options.temporal_model or "shipped",
                          "architecture": card.get("architecture")}, rate
    alpha = options.ema_alpha or card.get("results", {}).get("ema_alpha", DEFAULT_EMA_ALPHA)
    if not 0 < alpha <= 1:
        raise SettingsError(f"--ema-alpha must be in (0, 1], got {alpha}")
    return EmaSmoother(alpha), {"method": "ema", "alpha": alpha}, rate


def _note(line: str) -> None:
    tqdm.write(f"emofl analyze: {line}", file=sys.stderr)


def _print_alert(alert: Alert) -> None:
    tqdm.write(f"alert: participant {alert.participant} {alert.emotion} since "
               f"{alert.start_s:.1f} s", file=sys.stderr)
