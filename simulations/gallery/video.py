"""Test videos of a conferencing gallery built from labelled still faces, with ground truth.

FER2013 has no video, so `emofl analyze` is measured on a simulated meeting: a grid of tiles
(3x3 at 640x480 by default), one participant per tile, each showing a series of expression
segments (a few seconds each; the expression is the label of a randomly drawn face, so classes
appear as often as in the data) through one to a few faces of that class, enlarged to a webcam
face size. Some tiles' faces drift around the tile (a participant moving), one tile goes empty
for a while and comes back (a participant who leaves and returns to the same place), and every
frame carries a little sensor noise. The video is written with OpenCV (MPEG-4 part 2), so
decoding it costs what a real recording costs.

Beside `VIDEO` goes `VIDEO_STEM_truth.csv` with one row per frame and tile:
frame,tile,present,label,face,x,y,w,h — `label` the class index shown, `face` the index of the
still face in the data set, the box where that face is drawn (original-frame pixels).

Usage: python -m emofl.simulations.gallery.video --faces ../shared/data/fer2013/val
       --out runs/analyze/gallery_0.mp4 [--seconds 60] [--seed 0]
"""

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from emofl.common.data.datasets import load_dataset
from emofl.common.data.face_dataset import FaceDataset

TRUTH_COLUMNS = ("frame", "tile", "present", "label", "face", "x", "y", "w", "h")
NOISE_BANK = 8  # distinct noise fields cycled over frames


@dataclass(frozen=True)
class GallerySpec:
    """Layout and behaviour of a gallery video (sizes in pixels, times in seconds)."""

    width: int = 640
    height: int = 480
    rows: int = 3
    cols: int = 3
    fps: float = 30.0
    seconds: float = 60.0
    face_size: int = 112
    segment_seconds: tuple[float, float] = (2.0, 6.0)
    faces_per_segment: tuple[int, int] = (1, 3)
    moving_tiles: int = 2  # tiles whose face drifts around the tile
    absent_seconds: float = 6.0  # one tile is empty this long in the middle (0: never)
    noise_sigma: float = 3.0
    seed: int = 0

    def tile_box(self, tile: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of a tile, row by row from the top-left."""
        r, c = divmod(tile, self.cols)
        x0, x1 = c * self.width // self.cols, (c + 1) * self.width // self.cols
        y0, y1 = r * self.height // self.rows, (r + 1) * self.height // self.rows
        return x0, y0, x1 - x0, y1 - y0


@dataclass(frozen=True)
class _Shown:
    """What a tile shows over a span of frames: a face index and its class (or nothing)."""

    start: int
    end: int
    face: int  # -1: tile empty
    label: int


def _schedule(spec: GallerySpec, faces: FaceDataset, rng: np.random.Generator,
              absent: tuple[int, int] | None) -> list[_Shown]:
    """One tile's timeline: segments of one expression shown through 1..n faces of its class,
    with the frames in `absent` (start, end) left empty."""
    by_class = {c: np.flatnonzero(faces.labels == c) for c in np.unique(faces.labels)}
    total = round(spec.seconds * spec.fps)
    shown: list[_Shown] = []
    frame, previous = 0, -1
    while frame < total:
        label = previous
        while label == previous:
            label = int(faces.labels[rng.integers(len(faces))])
        previous = label
        end = min(total, frame + max(1, round(rng.uniform(*spec.segment_seconds) * spec.fps)))
        count = int(rng.integers(spec.faces_per_segment[0], spec.faces_per_segment[1] + 1))
        chosen = rng.choice(by_class[label], size=count, replace=len(by_class[label]) < count)
        cuts = np.linspace(frame, end, count + 1).round().astype(int)
        for face, a, b in zip(chosen, cuts[:-1], cuts[1:], strict=True):
            if b > a:
                shown.append(_Shown(int(a), int(b), int(face), label))
        frame = end
    if absent is None:
        return shown
    return _cut_out(shown, *absent)


def _cut_out(shown: list[_Shown], start: int, end: int) -> list[_Shown]:
    """The timeline with frames start..end-1 replaced by an empty span."""
    out: list[_Shown] = []
    for s in shown:
        if s.start < start:
            out.append(_Shown(s.start, min(s.end, start), s.face, s.label))
        if s.end > end:
            out.append(_Shown(max(s.start, end), s.end, s.face, s.label))
    out.append(_Shown(start, end, -1, -1))
    return sorted(out, key=lambda s: s.start)


def _face_offset(spec: GallerySpec, tile: int, moving: bool, frame: int) -> tuple[int, int]:
    """Top-left of the face inside its tile: centred, or on a slow Lissajous path."""
    _, _, tw, th = spec.tile_box(tile)
    cx, cy = (tw - spec.face_size) / 2, (th - spec.face_size) / 2
    if not moving:
        return round(cx), round(cy)
    t = frame / spec.fps
    return (round(cx + 0.9 * cx * math.sin(2 * math.pi * t / 7.0 + tile)),
            round(cy + 0.9 * cy * math.sin(2 * math.pi * t / 5.0 + 2 * tile)))


def _background(spec: GallerySpec, rng: np.random.Generator) -> np.ndarray:
    """Muted tile backgrounds separated by dark gallery borders (BGR)."""
    frame = np.zeros((spec.height, spec.width, 3), np.uint8)
    for tile in range(spec.rows * spec.cols):
        x, y, w, h = spec.tile_box(tile)
        frame[y + 2 : y + h - 2, x + 2 : x + w - 2] = rng.integers(60, 200, size=3)
    return frame


def write_gallery_video(faces: FaceDataset, out: str | Path, spec: GallerySpec,
                        progress: bool = False) -> Path:
    """Render the gallery video to `out` (.mp4, MPEG-4) and its truth CSV; returns the CSV's
    path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    tiles = spec.rows * spec.cols
    total = round(spec.seconds * spec.fps)
    moving = set(rng.choice(tiles, size=min(spec.moving_tiles, tiles), replace=False).tolist())
    absent_tile = int(rng.integers(tiles))
    absent_frames = round(spec.absent_seconds * spec.fps)
    absent = ((total - absent_frames) // 2, (total + absent_frames) // 2)
    schedules = [_schedule(spec, faces, rng, absent if t == absent_tile and absent_frames else None)
                 for t in range(tiles)]
    background = _background(spec, rng)
    noise = rng.normal(0, spec.noise_sigma, (NOISE_BANK, spec.height, spec.width, 1))
    noise_up = np.clip(noise, 0, 255).astype(np.uint8).repeat(3, axis=3)
    noise_down = np.clip(-noise, 0, 255).astype(np.uint8).repeat(3, axis=3)
    size = (spec.face_size, spec.face_size)
    enlarged: dict[int, np.ndarray] = {}

    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), spec.fps,
                             (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {out}")
    truth_path = out.with_name(f"{out.stem}_truth.csv")
    cursors = [0] * tiles
    with truth_path.open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(TRUTH_COLUMNS)
        for frame in tqdm(range(total), desc="gallery video", unit="frame", disable=not progress):
            image = background.copy()
            for tile in range(tiles):
                while schedules[tile][cursors[tile]].end <= frame:
                    cursors[tile] += 1
                shown = schedules[tile][cursors[tile]]
                if shown.face < 0:
                    table.writerow((frame, tile, 0, -1, -1, 0, 0, 0, 0))
                    continue
                if shown.face not in enlarged:
                    gray = cv2.resize(faces.images[shown.face], size,
                                      interpolation=cv2.INTER_CUBIC)
                    enlarged[shown.face] = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
                tx, ty, _, _ = spec.tile_box(tile)
                dx, dy = _face_offset(spec, tile, tile in moving, frame)
                x, y = tx + dx, ty + dy
                image[y : y + spec.face_size, x : x + spec.face_size] = enlarged[shown.face]
                table.writerow((frame, tile, 1, shown.label, shown.face, x, y, *size))
            image = cv2.subtract(cv2.add(image, noise_up[frame % NOISE_BANK]),
                                 noise_down[frame % NOISE_BANK])
            writer.write(image)
    writer.release()
    return truth_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", required=True, help="labelled faces (FER2013 CSV or folder)")
    parser.add_argument("--split", default=None, help="CSV Usage or split sub-folder")
    parser.add_argument("--out", required=True, help="video file to write (.mp4)")
    parser.add_argument("--seconds", type=float, default=GallerySpec.seconds)
    parser.add_argument("--fps", type=float, default=GallerySpec.fps)
    parser.add_argument("--moving-tiles", type=int, default=GallerySpec.moving_tiles)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    spec = GallerySpec(seconds=args.seconds, fps=args.fps, moving_tiles=args.moving_tiles,
                       seed=args.seed)
    truth = write_gallery_video(load_dataset(args.faces, split=args.split), args.out, spec,
                                progress=True)
    print(f"wrote {args.out} and {truth}")


if __name__ == "__main__":
    main()
