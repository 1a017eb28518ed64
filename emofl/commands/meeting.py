"""`emofl analyze`: per-participant emotion, engagement and stability of a meeting."""

import argparse

from emofl.commands.options import bounded, command_line, out_folder
from emofl.common.edge.files import RUNTIMES
from emofl.common.errors import SettingsError
from emofl.common.protocol.choices import SMOOTHING
from emofl.common.protocol.setting import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE

_count = bounded(int, AT_LEAST_ONE)
_index = bounded(int, NON_NEGATIVE)
_positive = bounded(float, POSITIVE)


def add(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("analyze", help="per-participant emotion, engagement and stability "
                            "of a meeting video or camera")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", help="recorded meeting video")
    source.add_argument("--camera", type=_index, metavar="N", help="camera index")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="frame model file (default: the shipped model)")
    p.add_argument("--weights", default="",
                   help="engagement weights, e.g. happy=1.0,sad=0.1 (unnamed classes keep "
                   "their defaults)")
    p.add_argument("--fps", type=_positive, default=None,
                   help="process at most F frames per second of video (default: all)")
    p.add_argument("--save-annotated", action="store_true",
                   help="also write annotated.mp4 (the only output with pixels of faces)")
    p.add_argument("--exclude", type=_index, nargs="+", action="extend", default=[],
                   metavar="ID", help="participants without consent: blurred in annotated.mp4, "
                   "left out of every other output")
    p.add_argument("--smoothing", choices=SMOOTHING, default=SMOOTHING[0],
                   help="per-participant smoothing over time (default: the temporal model)")
    p.add_argument("--temporal-model", default=None,
                   help="temporal model file (default: the shipped one)")
    p.add_argument("--ema-alpha", type=_positive, default=None,
                   help="weight of a new step with --smoothing ema")
    p.add_argument("--analysis-fps", type=float, default=None,
                   help="classify and smooth each face this often (default: the temporal "
                   "model's rate, 10/s); 0: every processed frame")
    p.add_argument("--runtime", choices=RUNTIMES, default=RUNTIMES[0],
                   help="ONNX Runtime with the fp32 or int8 frame graph, or torch (default: "
                   f"{RUNTIMES[0]}); a --model FILE is exported once on first use")
    p.add_argument("--window", type=_positive, default=10.0,
                   help="seconds of the sliding window for stability S_i (default 10)")
    p.add_argument("--alert-seconds", type=float, default=10.0,
                   help="alert when angry/fear/sad dominates longer than this (default 10)")
    p.add_argument("--detect-every", type=_count, default=10,
                   help="run face detection every N processed frames (default 10)")
    p.add_argument("--detect-width", type=_index, default=320,
                   help="detect on frames shrunk to this width; 0: full size (default 320)")
    p.add_argument("--change-threshold", type=float, default=4.0,
                   help="re-run the CNN on a face whose 48x48 crop changed by more than this "
                   "many gray levels on average; 0: always (default 4)")
    p.add_argument("--no-tracking", action="store_true",
                   help="report faces only where detected (the naive pipeline, for comparison)")
    p.add_argument("--workers", type=_count, default=None,
                   help="threads sharing the work: one decodes, the others downscale and "
                   "detect, while the main thread tracks and classifies; 1: one thread for "
                   "everything (the output is the same; default: 2)")
    p.add_argument("--realtime", action="store_true",
                   help="play the video at its own frame rate, as a camera would deliver it: "
                   "frames the analysis cannot keep up with are dropped, and the summary gives "
                   "each frame's delay to its timeline row")
    p.set_defaults(handler=_analyze, run_folder=out_folder)


def _analyze(args: argparse.Namespace) -> dict:
    if args.analysis_fps is not None:
        NON_NEGATIVE.check(args.analysis_fps, "--analysis-fps")
    NON_NEGATIVE.check(args.alert_seconds, "--alert-seconds")
    if args.realtime and args.camera is not None:
        raise SettingsError("--realtime plays a video file at its own rate; a camera is "
                            "already real time")
    from pathlib import Path

    from emofl.client.meeting.analyze_run import AnalyzeOptions, run_analysis
    from emofl.client.meeting.analyzer import AnalyzerSettings

    pipeline = AnalyzerSettings(
        max_fps=args.fps, analysis_fps=args.analysis_fps, detect_width=args.detect_width or None,
        detect_every=args.detect_every, tracking=not args.no_tracking,
        exclude=frozenset(args.exclude),
        **({"workers": args.workers} if args.workers else {}))
    return run_analysis(AnalyzeOptions(
        out=Path(args.out), video=args.video, camera=args.camera, realtime=args.realtime,
        model=args.model,
        temporal_model=args.temporal_model, runtime=args.runtime, smoothing=args.smoothing,
        ema_alpha=args.ema_alpha, weights=args.weights, window_s=args.window,
        alert_seconds=args.alert_seconds, change_threshold=args.change_threshold,
        save_annotated=args.save_annotated, pipeline=pipeline, command=command_line()))
