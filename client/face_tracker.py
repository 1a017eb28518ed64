"""Stable participant ids for faces across frames: detections every few frames, following between.

Why: Haar detection is too slow to run on every frame and misses a given face in a fair share
of frames (about one FER face in five at gallery size), so a participant seen only when detected
would flicker in and out and change ids. The tracker keeps each face as a `Track`:

- On a detection frame, detections are matched to tracks by box overlap (IoU, greedy, best
  first). A matched track takes the detected box and a new template (the face's pixels on the
  downscaled frame).
- On other frames, and for tracks a detection pass missed, the track follows its face by
  template matching in a window around its box. When the patch under the box still matches the
  template (a still face, the usual gallery tile) nothing is searched.
- A track stays alive while its face is either detected or still matches its template; after
  `hold_seconds` of neither, it is lost. A face that then appears where a lost track was (IoU
  at least `match_iou` with its last box) gets the lost track's id back: a gallery tile keeps
  its participant id when someone leaves and returns.
- New faces seen in the same detection pass get ids in reading order (row by row, then left to
  right), so participant 0 is the top-left tile of a gallery.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from .face_detector import ScaledFrame


@dataclass
class Track:
    """One participant's face: id, box (x, y, w, h) in full-frame pixels, last time its face was
    confirmed (detected or matched to its template), and the template on the small frame."""

    id: int
    box: np.ndarray
    confirmed_s: float
    template: np.ndarray | None = field(default=None, repr=False)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax2[:, None], bx2) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(ay2[:, None], by2) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _greedy_pairs(overlap: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs of an overlap matrix, best first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if overlap.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-overlap, axis=None), overlap.shape))[0]
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for r, c in order:
        if overlap[r, c] < threshold:
            break
        if r not in used_rows and c not in used_cols:
            pairs.append((int(r), int(c)))
            used_rows.add(int(r))
            used_cols.add(int(c))
    return pairs


def _reading_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of boxes row by row (rows one median face height apart), left to right."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    row_height = max(float(np.median(boxes[:, 3])), 1.0)
    rows = np.floor(centres[:, 1] / row_height)
    return np.lexsort((centres[:, 0], rows))


class FaceTracker:
    """Assigns participant ids to faces and keeps their boxes between detections.

    `hold_seconds`: how long a track survives with neither a detection nor a template match.
    `match_iou`: least overlap for a detection to continue a track or revive a lost one.
    `keep_score`: normalised correlation above which the face under a box counts as the same
    face (confirming the track); `follow_score`: least correlation for moving a box to a match.
    `search_margin`: how far around its box a track searches, as a fraction of the box size.
    `follow` False ends every track its face's detection misses at once (no following, no
    holding): detection alone, the naive pipeline kept for comparison.
    """

    def __init__(self, hold_seconds: float = 2.0, match_iou: float = 0.3,
                 keep_score: float = 0.7, follow_score: float = 0.5,
                 search_margin: float = 0.4, follow: bool = True) -> None:
        self.hold_seconds = hold_seconds
        self.follow = follow
        self.match_iou = match_iou
        self.keep_score = keep_score
        self.follow_score = follow_score
        self.search_margin = search_margin
        self.tracks: list[Track] = []
        self._lost: dict[int, np.ndarray] = {}  # id -> last box, for re-identification
        self._next_id = 0

    def update(self, frame: ScaledFrame, time_s: float,
               detections: np.ndarray | None = None) -> tuple[list[Track], list[int]]:
        """Advance to this frame; `detections` (N, 4) on detection frames, None otherwise.

        Returns the live tracks in id order and the ids lost at this frame.
        """
        unmatched_tracks = list(range(len(self.tracks)))
        if detections is not None:
            unmatched_tracks = self._associate(frame, time_s, np.asarray(detections, float))
        if self.follow:
            for i in unmatched_tracks:
                self._follow(self.tracks[i], frame, time_s)
            ended = [t.id for t in self.tracks if time_s - t.confirmed_s > self.hold_seconds]
        else:
            ended = [self.tracks[i].id for i in unmatched_tracks]
        for track in self.tracks:
            if track.id in ended:
                self._lost[track.id] = track.box.copy()
        self.tracks = sorted((t for t in self.tracks if t.id not in ended), key=lambda t: t.id)
        return list(self.tracks), ended

    def _associate(self, frame: ScaledFrame, time_s: float, detections: np.ndarray) -> list[int]:
        """Match detections to tracks, start or revive tracks for the rest; return the indices
        of tracks no detection matched."""
        boxes = np.array([t.box for t in self.tracks]).reshape(-1, 4)
        pairs = _greedy_pairs(iou(boxes, detections), self.match_iou)
        for ti, di in pairs:
            self._reset(self.tracks[ti], detections[di], frame, time_s)
        matched_dets = {di for _, di in pairs}
        fresh = [d for i, d in enumerate(detections) if i not in matched_dets
                 and not self._inside_a_track(d, boxes)]
        fresh_boxes = np.array(fresh).reshape(-1, 4)
        for i in _reading_order(fresh_boxes):
            track = Track(self._take_id(fresh_boxes[i]), fresh_boxes[i].copy(), time_s)
            self._reset(track, fresh_boxes[i], frame, time_s)
            self.tracks.append(track)
        matched_tracks = {ti for ti, _ in pairs}
        return [i for i in range(len(boxes)) if i not in matched_tracks]

    @staticmethod
    def _inside_a_track(box: np.ndarray, track_boxes: np.ndarray) -> bool:
        """Whether a detection's centre lies in a live track's box: a second, offset detection
        of a face already tracked, not a new face."""
        if len(track_boxes) == 0:
            return False
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        inside = ((track_boxes[:, 0] <= cx) & (cx <= track_boxes[:, 0] + track_boxes[:, 2])
                  & (track_boxes[:, 1] <= cy) & (cy <= track_boxes[:, 1] + track_boxes[:, 3]))
        return bool(inside.any())

    def _take_id(self, box: np.ndarray) -> int:
        """The id of the lost track this box overlaps most (enough), else a new id."""
        if self._lost:
            ids = list(self._lost)
            overlap = iou(box, np.array([self._lost[i] for i in ids]))[0]
            best = int(np.argmax(overlap))
            if overlap[best] >= self.match_iou:
                del self._lost[ids[best]]
                return ids[best]
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def _reset(self, track: Track, box: np.ndarray, frame: ScaledFrame, time_s: float) -> None:
        track.box = box.copy()
        track.confirmed_s = time_s
        track.template = _patch(frame.small, box * frame.scale)

    def _follow(self, track: Track, frame: ScaledFrame, time_s: float) -> None:
        """Confirm a still face in place, or move the box to where its template matches."""
        template = track.template
        if template is None or min(template.shape) < 4:
            return
        small_box = track.box * frame.scale
        here = _patch(frame.small, small_box)
        if here is not None and here.shape == template.shape:
            score = float(cv2.matchTemplate(here, template, cv2.TM_CCOEFF_NORMED)[0, 0])
            if score >= self.keep_score:
                track.confirmed_s = time_s
                return
        th, tw = template.shape
        mx, my = round(tw * self.search_margin), round(th * self.search_margin)
        x0, y0 = max(0, round(small_box[0]) - mx), max(0, round(small_box[1]) - my)
        x1 = min(frame.small.shape[1], round(small_box[0]) + tw + mx)
        y1 = min(frame.small.shape[0], round(small_box[1]) + th + my)
        if x1 - x0 < tw or y1 - y0 < th:
            return
        scores = cv2.matchTemplate(frame.small[y0:y1, x0:x1], template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best >= self.follow_score:
            track.box = np.array([(x0 + bx) / frame.scale, (y0 + by) / frame.scale,
                                  track.box[2], track.box[3]])
        if best >= self.keep_score:
            track.confirmed_s = time_s


def _patch(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The pixels under a box (x, y, w, h), rounded to whole pixels; None when it lies outside."""
    x, y, w, h = (round(float(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.shape[1], x + w), min(image.shape[0], y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return np.ascontiguousarray(image[y0:y1, x0:x1])
