"""Synthetic "videos" of one face built from labelled still faces, to train and test smoothing.

FER2013 has no video, but a temporal model only sees the frame model's probabilities, so a
video can be simulated at that level: a sequence is a series of expression segments (1-6 s
each by default), each showing one true expression through one to a few faces of that class
(person-like variation between frames), each frame one of those faces under one of a few
random jitters (flip, rotation, zoom, shift, brightness, contrast: the view-to-view noise of a
webcam). Between segments the probabilities blend over a few frames (an expression changing),
and a small fraction of frames is replaced by a random face's probabilities (a tracker slip,
an occlusion, a motion-blurred frame).

The frame model runs once per face and view (`frame_probabilities`); sequences are then
assembled by indexing that cache (`SequenceBuilder`), so thousands of sequences cost
milliseconds and the temporal model can see fresh sequences at every training step.
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emofl.common.data.augmentation import augment_batch
from emofl.common.data.classes import NUM_CLASSES
from emofl.common.data.preprocessing import preprocess_faces

CHUNK = 512  # faces per frame-model batch


@dataclass(frozen=True)
class SequenceSettings:
    """How sequences are drawn. Segment lengths are in seconds at `fps` frames per second."""

    fps: float = 10.0
    length: int = 150  # frames per sequence
    segment_seconds: tuple[float, float] = (1.0, 6.0)
    faces_per_segment: tuple[int, int] = (1, 4)  # inclusive range
    transition_frames: tuple[int, int] = (0, 5)  # inclusive range of blended frames
    glitch_rate: float = 0.05  # fraction of frames showing a random face's probabilities

    def __post_init__(self) -> None:
        low, high = self.segment_seconds
        if self.fps <= 0 or self.length < 1 or not 0 < low <= high or round(low * self.fps) < 1:
            raise ValueError("fps, length and segment_seconds must give segments of >= 1 frame")
        if not 1 <= self.faces_per_segment[0] <= self.faces_per_segment[1]:
            raise ValueError(f"bad faces_per_segment {self.faces_per_segment}")
        if not 0 <= self.transition_frames[0] <= self.transition_frames[1]:
            raise ValueError(f"bad transition_frames {self.transition_frames}")
        if not 0.0 <= self.glitch_rate < 1.0:
            raise ValueError(f"glitch_rate must be in [0, 1), got {self.glitch_rate}")

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def frame_probabilities(
    model: nn.Module, images: np.ndarray, views: int, seed: int = 0, progress: bool = False
) -> np.ndarray:
    """The frame model's probabilities (N, views, 7) for uint8 faces (N, 48, 48): view 0 is
    the face as it is, views 1.. are random jitters of it (`augment_batch`, seeded)."""
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = np.empty((len(images), views, NUM_CLASSES), dtype=np.float32)
    starts = range(0, len(images), CHUNK)
    for start in tqdm(starts, desc="frame model", unit="chunk", disable=not progress):
        x = torch.from_numpy(preprocess_faces(images[start : start + CHUNK]))
        for view in range(views):
            batch = x if view == 0 else augment_batch(x, generator)
            out[start : start + CHUNK, view] = torch.softmax(model(batch), dim=1).numpy()
    return out


class SequenceBuilder:
    """Draws sequences from cached per-face probabilities `cache` (N, V, 7) and `labels` (N,).

    A segment's expression is the label of a uniformly drawn face (so classes appear as often
    as in the data), redrawn until it differs from the previous segment's.
    """

    def __init__(self, cache: np.ndarray, labels: np.ndarray, settings: SequenceSettings) -> None:
        if cache.ndim != 3 or cache.shape[2] != NUM_CLASSES or len(cache) != len(labels):
            raise ValueError(f"expected a (N, V, 7) cache for {len(labels)} labels, got "
                             f"{cache.shape}")
        if len(np.unique(labels)) < 2:
            raise ValueError("sequences need faces of at least two classes")
        self.cache, self.labels, self.settings = cache, np.asarray(labels), settings
        self.by_class = {c: np.flatnonzero(self.labels == c) for c in np.unique(self.labels)}

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`count` sequences: probabilities (count, length, 7) float32 and the true label of
        every frame (count, length) int64."""
        length = self.settings.length
        probs = np.empty((count, length, NUM_CLASSES), dtype=np.float32)
        labels = np.empty((count, length), dtype=np.int64)
        for s in range(count):
            self._fill(probs[s], labels[s], rng)
        return probs, labels

    def _fill(self, probs: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
        """Write one sequence, segment by segment, into `probs` (T, 7) and `labels` (T,)."""
        settings, t, label = self.settings, 0, -1
        while t < len(labels):
            label = self._next_label(label, rng)
            seconds = rng.uniform(*settings.segment_seconds)
            end = min(t + max(1, round(seconds * settings.fps)), len(labels))
            probs[t:end] = self._segment(label, end - t, rng)
            labels[t:end] = label
            if t > 0:
                self._blend(probs, labels, t, end, rng)
            t = end

    def _next_label(self, previous: int, rng: np.random.Generator) -> int:
        while True:
            label = int(self.labels[rng.integers(len(self.labels))])
            if label != previous:
                return label

    def _segment(self, label: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        """Probabilities (frames, 7) of one expression: its faces and views drawn per frame,
        with glitch frames taken from any face."""
        low, high = self.settings.faces_per_segment
        faces = rng.choice(self.by_class[label], size=rng.integers(low, high + 1))
        face = faces[rng.integers(len(faces), size=frames)]
        glitch = rng.random(frames) < self.settings.glitch_rate
        face[glitch] = rng.integers(len(self.labels), size=int(glitch.sum()))
        view = rng.integers(self.cache.shape[1], size=frames)
        return self.cache[face, view]

    def _blend(
        self, probs: np.ndarray, labels: np.ndarray, start: int, end: int,
        rng: np.random.Generator,
    ) -> None:
        """Blend the first frames of the segment at `start` from the previous frame's
        probabilities; a frame keeps the previous label while the old expression dominates."""
        low, high = self.settings.transition_frames
        frames = min(int(rng.integers(low, high + 1)), end - start)
        if frames == 0:
            return
        weight = (np.arange(1, frames + 1, dtype=np.float32) / (frames + 1))[:, None]
        span = slice(start, start + frames)
        probs[span] = (1 - weight) * probs[start - 1] + weight * probs[span]
        labels[span] = np.where(weight[:, 0] < 0.5, labels[start - 1], labels[span])
