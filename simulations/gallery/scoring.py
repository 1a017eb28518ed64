"""Scores an `emofl analyze` timeline against a gallery video's ground truth.

A timeline row belongs to the tile that contains its box centre. For every (frame, tile) pair
showing a face:
- covered: some row of that frame lies in the tile;
- correct: that row's label (after the temporal model) is the class shown.
Rows in an empty tile or outside every tile are false rows. Ids are stable when each tile is
reported under one participant id (its majority id) and no id appears in two tiles.
"""

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from emofl.common.data.classes import CLASSES
from emofl.simulations.gallery.video import GallerySpec


def read_truth(path: Path) -> dict[tuple[int, int], tuple[int, int]]:
    """(frame, tile) -> (label, face index) for every pair showing a face."""
    truth = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["present"] == "1":
                truth[int(row["frame"]), int(row["tile"])] = (int(row["label"]), int(row["face"]))
    return truth


def tile_of(spec: GallerySpec, x: float, y: float) -> int:
    """The tile containing point (x, y), or -1 outside the gallery."""
    if not (0 <= x < spec.width and 0 <= y < spec.height):
        return -1
    col = min(int(x * spec.cols // spec.width), spec.cols - 1)
    row = min(int(y * spec.rows // spec.height), spec.rows - 1)
    return row * spec.cols + col


def score_timeline(timeline: Path, truth: dict[tuple[int, int], tuple[int, int]],
                   spec: GallerySpec) -> dict:
    """Coverage, accuracy (per face-frame), false rows and id stability of a timeline."""
    seen: dict[tuple[int, int], tuple[int, str]] = {}
    false_rows = rows = 0
    ids_per_tile: dict[int, Counter] = defaultdict(Counter)
    with timeline.open() as handle:
        for row in csv.DictReader(handle):
            rows += 1
            x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            key = (int(row["frame"]), tile_of(spec, x + w / 2, y + h / 2))
            if key not in truth:
                false_rows += 1
                continue
            ids_per_tile[key[1]][int(row["participant"])] += 1
            seen.setdefault(key, (int(row["participant"]), row["label"]))
    covered = [key for key in truth if key in seen]
    correct = sum(seen[key][1] == CLASSES[truth[key][0]] for key in covered)
    majority = {tile: ids.most_common(1)[0][0] for tile, ids in ids_per_tile.items()}
    on_majority = sum(seen[key][0] == majority[key[1]] for key in covered)
    id_tiles = Counter(i for ids in ids_per_tile.values() for i in ids)
    return {
        "pairs": len(truth),
        "rows": rows,
        "coverage": round(len(covered) / len(truth), 4),
        "accuracy_covered": round(correct / len(covered), 4) if covered else None,
        "accuracy_all_pairs": round(correct / len(truth), 4),
        "false_rows": false_rows,
        "ids_per_tile": {str(t): len(ids) for t, ids in sorted(ids_per_tile.items())},
        "pairs_on_tile_majority_id": round(on_majority / len(covered), 4) if covered else None,
        "ids_in_several_tiles": sorted(i for i, n in id_tiles.items() if n > 1),
    }


def still_accuracy(truth: dict[tuple[int, int], tuple[int, int]],
                   predictions: np.ndarray) -> float:
    """The frame model's accuracy on the original 48x48 stills, weighted like the video: one
    vote per (frame, tile) pair showing the face. `predictions[face]` is its predicted class."""
    hits = sum(int(predictions[face] == label) for label, face in truth.values())
    return round(hits / len(truth), 4)
