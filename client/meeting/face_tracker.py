"""Stable participant ids for faces across frames: detections every few frames, following between.

Why: Haar detection is too slow to run on every frame and misses a given face in a fair share
of frames (about one FER face in four at gallery size), so a participant seen only when detected
would flicker in and out and change ids. The tracker keeps each face as a `Track`:

- On a detection frame, detections are matched to tracks by box overlap (IoU, greedy, best
  first), then the rest by nearness (a face that moved away from a box it was not followed
  in). A matched track takes the detected box and a new template (the face's pixels on the
  downscaled frame).
- On other frames, and for tracks a detection pass missed, the track follows its face by
  template matching in a window around its box. When the patch under the box still matches the
  template (a still face, the usual gallery tile) nothing is searched.
- A track stays alive while its face is either detected or still matches its template; after
  `hold_seconds` of neither, or as soon as its box holds a flat, featureless patch (a camera
  switched off), it is lost. A face that then appears near where a lost track was (within
  `match_distance` face widths of its last box) gets the lost track's id back: a gallery tile
  keeps its participant id when someone leaves and returns.
- New faces seen in the same detection pass get ids in reading order (row by row, then left to
  right), so participant 0 is the top-left tile of a gallery.
"""

from dataclasses import dataclass, field
from math import ceil

import cv2
import numpy as np

from emofl.client.inference.face_detector import ScaledFrame


@dataclass
class Track:
    """One participant's face: id, box (x, y, w, h) in full-frame pixels, the last time its
    face was confirmed (detected, or matched to its template) and the last time it was
    updated; on the small frame, the face's template from its last detection and the
    reference the box follows."""

    id: int
    box: np.ndarray
    confirmed_s: float
    updated_s: float = 0.0
    template: np.ndarray | None = field(default=None, repr=False)
    reference: np.ndarray | None = field(default=None, repr=False)


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


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between the centres of every box in `a` (N, 4) and every box in `b` (M, 4), in
    units of the wider box of each pair."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ca, cb = a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    distance = np.linalg.norm(ca[:, None] - cb[None], axis=2)
    return distance / np.maximum(np.maximum(a[:, None, 2], b[None, :, 2]), 1e-9)


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
    `match_iou`: least overlap for a detection to continue a track.
    `match_distance`: for a detection no track overlaps enough, the farthest (centre to centre,
    in face widths) that an unmatched track may be to take it, and a lost track to be revived.
    `keep_score`: normalised correlation above which the face under a box counts as the same
    face (confirming the track); `follow_score`: least correlation for moving a box to a match.
    `follow_speed`: the fastest motion followed, in face widths per second (it sets how far
    around its box a track searches).
    `flat_std`: a box whose pixels have become nearly uniform (standard deviation below this,
    in gray levels: a camera switched off, an emptied tile) ends its track at once.
    `follow` False ends every track its face's detection misses at once (no following, no
    holding): detection alone, the naive pipeline kept for comparison.
    """

    def __init__(self, hold_seconds: float = 6.0, match_iou: float = 0.3,
                 match_distance: float = 1.0, keep_score: float = 0.7, follow_score: float = 0.5,
                 follow_speed: float = 1.0, flat_std: float = 8.0,
                 follow: bool = True) -> None:
        self.hold_seconds = hold_seconds
        self.flat_std = flat_std
        self.follow = follow
        self.match_iou = match_iou
        self.match_distance = match_distance
        self.keep_score = keep_score
        self.follow_score = follow_score
        self.follow_speed = follow_speed
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
        """Match detections to tracks (by overlap, then by nearness for faces that moved away
        from their box), start or revive tracks for the rest; return the indices of tracks no
        detection matched."""
        boxes = np.array([t.box for t in self.tracks]).reshape(-1, 4)
        pairs = _greedy_pairs(iou(boxes, detections), self.match_iou)
        taken_t, taken_d = {t for t, _ in pairs}, {d for _, d in pairs}
        rest_t = [i for i in range(len(boxes)) if i not in taken_t]
        rest_d = [i for i in range(len(detections)) if i not in taken_d]
        nearness = 1 - centre_distance(boxes[rest_t], detections[rest_d])
        pairs += [(rest_t[t], rest_d[d])
                  for t, d in _greedy_pairs(nearness, 1 - self.match_distance)]
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
        """The id of the lost track nearest this box (within `match_distance`), else a new id."""
        if self._lost:
            ids = list(self._lost)
            distance = centre_distance(box, np.array([self._lost[i] for i in ids]))[0]
            best = int(np.argmin(distance))
            if distance[best] <= self.match_distance:
                del self._lost[ids[best]]
                return ids[best]
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def _reset(self, track: Track, box: np.ndarray, frame: ScaledFrame, time_s: float) -> None:
        track.box = box.copy()
        track.confirmed_s = track.updated_s = time_s
        track.template = _patch(frame.small, box * frame.scale)
        track.reference = track.template

    def _follow(self, track: Track, frame: ScaledFrame, time_s: float) -> None:
        """Move the box with its content, then confirm the track if that content still looks
        like the face last detected there (or end it if the box went flat).

        Following matches `track.reference` (the pixels under the box when it last moved) in a
        window a few pixels around the box: comparing against the last move rather than the
        last frame lets slow motion add up instead of rounding away. When nothing there matches
        (the content changed at once), the box stays and follows the new content from now on.
        """
        if track.reference is None:
            return
        reach = max(2, ceil(self.follow_speed * track.reference.shape[1]
                            * (time_s - track.updated_s)))
        track.updated_s = time_s
        x, y = (round(float(v) * frame.scale) for v in track.box[:2])
        rh, rw = track.reference.shape
        x0, y0 = max(0, x - reach), max(0, y - reach)
        x1 = min(frame.small.shape[1], x + rw + reach)
        y1 = min(frame.small.shape[0], y + rh + reach)
        if x1 - x0 >= rw and y1 - y0 >= rh:
            scores = cv2.matchTemplate(frame.small[y0:y1, x0:x1], track.reference,
                                       cv2.TM_CCOEFF_NORMED)
            _, best, _, (bx, by) = cv2.minMaxLoc(scores)
            moved = best >= self.follow_score and (x0 + bx, y0 + by) != (x, y)
            if moved:
                x, y = x0 + bx, y0 + by
                track.box = np.array([x / frame.scale, y / frame.scale, *track.box[2:]])
            if moved or best < self.follow_score:
                track.reference = _patch(frame.small, track.box * frame.scale)
        here = _patch(frame.small, track.box * frame.scale)
        if here is None or float(here.std()) < self.flat_std:
            track.confirmed_s = -np.inf  # nothing there any more: end the track now
        elif track.template is not None and here.shape == track.template.shape:
            score = float(cv2.matchTemplate(here, track.template, cv2.TM_CCOEFF_NORMED)[0, 0])
            if score >= self.keep_score:
                track.confirmed_s = time_s


def _patch(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The pixels under a box (x, y, w, h), rounded to whole pixels; None when it lies outside."""
    x, y, w, h = (round(float(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.shape[1], x + w), min(image.shape[0], y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return np.ascontiguousarray(image[y0:y1, x0:x1])
