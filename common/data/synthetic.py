"""Built-in synthetic faces: procedurally drawn 48x48 expressions for demos and tests.

Real FER data sets cannot ship with emofl, so demos, simulations and tests run on cartoon faces
drawn with OpenCV. Each face gets a random identity (shape, skin tone, feature placement), one of
the seven expressions (mouth, brows and eyes), a random pose, lighting and sensor noise. Expression
parameters are jittered and their intensity varies, so neighbouring classes overlap a little: a
small CNN learns the task well above chance without it being trivial.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from emofl.common.data.classes import CLASSES, NUM_CLASSES
from emofl.common.data.face_dataset import IMAGE_SIZE, FaceDataset

# Faces are drawn at SCALE x the output size and shrunk with INTER_AREA, which anti-aliases them.
SCALE = 4
CANVAS = IMAGE_SIZE * SCALE

# Per-class expression parameters (see _Expression for their meaning), in the order of CLASSES.
_EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry": dict(curve=-0.3, open=0.0, width=0.75, lip=0.0, brow=-0.8, slant=1.0, eye=0.55),
    "disgust": dict(curve=-0.4, open=0.15, width=0.85, lip=1.0, brow=-0.4, slant=0.4, eye=0.6),
    "fear": dict(curve=-0.4, open=0.45, width=1.0, lip=0.0, brow=0.8, slant=-0.6, eye=1.45),
    "happy": dict(curve=1.0, open=0.25, width=1.15, lip=0.0, brow=0.1, slant=0.0, eye=0.85),
    "sad": dict(curve=-1.0, open=0.0, width=0.85, lip=0.0, brow=0.2, slant=-1.0, eye=0.8),
    "surprise": dict(curve=0.0, open=1.0, width=0.55, lip=0.0, brow=1.0, slant=0.0, eye=1.55),
    "neutral": dict(curve=0.0, open=0.0, width=0.95, lip=0.0, brow=0.0, slant=0.0, eye=1.0),
}
# Standard deviation of the per-face jitter added to each expression parameter.
_JITTER = dict(curve=0.2, open=0.08, width=0.08, lip=0.15, brow=0.2, slant=0.25, eye=0.12)


@dataclass(frozen=True)
class _Identity:
    """Who the face belongs to; lengths are in output pixels, gray levels in 0..255."""

    face_w: float  # half-width of the face oval
    face_h: float  # half-height of the face oval
    skin: float
    background: float
    hair: float  # gray level of the hair, or -1 for no hair
    eye_dx: float  # horizontal distance of each eye from the face centre
    eye_y: float  # eye height relative to the face centre
    eye_w: float  # half-width of an eye
    mouth_y: float  # mouth height relative to the face centre
    mouth_w: float  # half-width of a neutral mouth
    nose_len: float


@dataclass(frozen=True)
class _Expression:
    """How the face looks; all values are unitless, 0 meaning neutral for the signed ones."""

    curve: float  # mouth corners up (>0, smile) or down (<0, frown)
    open: float  # how far the mouth is open (1: round O)
    width: float  # mouth width relative to the identity's neutral mouth
    lip: float  # raise of one side of the upper lip (disgust)
    lip_side: int  # which side is raised: -1 left, +1 right
    brow: float  # raise of both brows (>0 up, <0 lowered)
    slant: float  # inner brow ends down (>0, angry) or up (<0, sad / fear)
    eye: float  # eye opening relative to normal


@dataclass(frozen=True)
class _Pose:
    """Rigid placement of the face in the image."""

    angle: float  # degrees
    scale: float
    dx: float  # output pixels
    dy: float


def make_synthetic_faces(num_faces: int, seed: int = 0) -> FaceDataset:
    """Draw `num_faces` synthetic 48x48 faces with labels balanced over the seven classes.

    Class counts differ by at most one and the order is shuffled. The result depends only on
    `num_faces` and `seed`, so tests and federated clients can regenerate identical data.
    """
    if num_faces < 1:
        raise ValueError(f"num_faces must be at least 1, got {num_faces}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_faces) % NUM_CLASSES).astype(np.int64)
    images = np.empty((num_faces, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        identity = _sample_identity(rng)
        canvas = _draw_face(identity, _sample_expression(rng, int(label)))
        canvas = _apply_pose(canvas, _sample_pose(rng), identity.background)
        images[i] = cv2.resize(canvas, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    images = _apply_lighting(images, rng)
    images = _apply_noise(images, rng)
    return FaceDataset(images=images, labels=labels, source="synthetic")


def _sample_identity(rng: np.random.Generator) -> _Identity:
    """A random face shape, tone and feature layout."""
    skin = rng.uniform(90, 215)
    # Keep the background visibly different from the skin so the face outline stays visible.
    offset = rng.uniform(30, 110)
    background = skin + offset if skin + offset <= 245 else skin - offset
    return _Identity(
        face_w=rng.uniform(13.0, 16.5),
        face_h=rng.uniform(17.0, 20.5),
        skin=skin,
        background=background,
        hair=rng.uniform(10, 110) if rng.random() < 0.7 else -1.0,
        eye_dx=rng.uniform(5.5, 7.5),
        eye_y=rng.uniform(-4.5, -2.5),
        eye_w=rng.uniform(2.3, 3.2),
        mouth_y=rng.uniform(8.0, 10.0),
        mouth_w=rng.uniform(4.0, 5.5),
        nose_len=rng.uniform(5.0, 7.5),
    )


def _sample_expression(rng: np.random.Generator, label: int) -> _Expression:
    """The class's expression at a random intensity, blended from neutral, plus jitter."""
    target = _EXPRESSIONS[CLASSES[label]]
    neutral = _EXPRESSIONS["neutral"]
    intensity = rng.uniform(0.7, 1.15)
    values = {
        name: neutral[name] + intensity * (target[name] - neutral[name]) + rng.normal(0, sd)
        for name, sd in _JITTER.items()
    }
    return _Expression(
        curve=values["curve"],
        open=max(values["open"], 0.0),
        width=max(values["width"], 0.4),
        lip=max(values["lip"], 0.0),
        lip_side=int(rng.choice([-1, 1])),
        brow=values["brow"],
        slant=values["slant"],
        eye=max(values["eye"], 0.3),
    )


def _sample_pose(rng: np.random.Generator) -> _Pose:
    """A small in-plane rotation, scale change and shift, as a loosely cropped face would have."""
    return _Pose(
        angle=rng.uniform(-12, 12),
        scale=rng.uniform(0.9, 1.1),
        dx=rng.uniform(-3, 3),
        dy=rng.uniform(-3, 3),
    )


def _pt(x: float, y: float) -> tuple[int, int]:
    """Output-pixel coordinates to integer canvas coordinates."""
    return round(x * SCALE), round(y * SCALE)


def _px(length: float) -> int:
    """An output-pixel length (axis, radius, thickness) in canvas pixels, at least 1."""
    return max(1, round(length * SCALE))


def _draw_face(who: _Identity, how: _Expression) -> np.ndarray:
    """Draw a frontal face, centred, on a uint8 canvas of CANVAS x CANVAS pixels."""
    canvas = np.full((CANVAS, CANVAS), round(who.background), dtype=np.uint8)
    cx, cy = IMAGE_SIZE / 2, IMAGE_SIZE / 2 + 1
    if who.hair >= 0:
        hair_axes = (_px(who.face_w * 1.12), _px(who.face_h * 0.95))
        cv2.ellipse(canvas, _pt(cx, cy - 6), hair_axes, 0, 0, 360, round(who.hair), -1)
    cv2.ellipse(
        canvas, _pt(cx, cy), (_px(who.face_w), _px(who.face_h)), 0, 0, 360, round(who.skin), -1
    )
    ink = round(who.skin * 0.3)  # dark features on any skin tone
    for side in (-1, 1):
        _draw_eye(canvas, cx + side * who.eye_dx, cy + who.eye_y, who, how, ink)
        _draw_brow(canvas, cx + side * who.eye_dx, cy + who.eye_y, side, who, how, ink)
    _draw_nose(canvas, cx, cy + who.eye_y, who, ink)
    _draw_mouth(canvas, cx, cy + who.mouth_y, who, how, ink)
    return canvas


def _draw_eye(
    canvas: np.ndarray, x: float, y: float, who: _Identity, how: _Expression, ink: int
) -> None:
    """An almond eye whose height follows the expression: wide open, normal or narrowed."""
    height = 1.5 * how.eye
    axes = (_px(who.eye_w), _px(height))
    cv2.ellipse(canvas, _pt(x, y), axes, 0, 0, 360, min(round(who.skin) + 60, 245), -1)
    cv2.circle(canvas, _pt(x, y), _px(min(1.3, height)), ink, -1)
    cv2.ellipse(canvas, _pt(x, y), axes, 0, 0, 360, ink, _px(0.5))
    cv2.ellipse(canvas, _pt(x, y), axes, 0, 180, 360, ink, _px(0.8))  # upper lid


def _draw_brow(
    canvas: np.ndarray,
    eye_x: float,
    eye_y: float,
    side: int,
    who: _Identity,
    how: _Expression,
    ink: int,
) -> None:
    """A brow above the eye; `side` is -1 for the left eye and +1 for the right one."""
    y = eye_y - 3.5 - 2.2 * how.brow
    inner = _pt(eye_x - side * (who.eye_w - 0.3), y + 1.3 * how.slant)
    outer = _pt(eye_x + side * (who.eye_w + 0.8), y - 0.3 * how.slant)
    cv2.line(canvas, inner, outer, ink, _px(1.3))


def _draw_nose(canvas: np.ndarray, x: float, top: float, who: _Identity, ink: int) -> None:
    """A nose ridge line ending in a small base arc, in a mid tone so it stays subtle."""
    tone = round(who.skin * 0.65)
    bottom = top + who.nose_len
    cv2.line(canvas, _pt(x + 0.3, top + 1.5), _pt(x + 0.8, bottom), tone, _px(0.5))
    cv2.ellipse(canvas, _pt(x, bottom), (_px(1.6), _px(0.8)), 0, 0, 180, ink, _px(0.5))


def _draw_mouth(
    canvas: np.ndarray, x: float, y: float, who: _Identity, how: _Expression, ink: int
) -> None:
    """A mouth as the region between an upper and a lower lip curve.

    Closed mouths collapse to a curved line (smile, frown, flat, or raised on one side); open
    ones become a filled dark shape, from a slightly open smile to a round O.
    """
    half_w = who.mouth_w * how.width
    t = np.linspace(-1.0, 1.0, 15)
    centre = y + 2.2 * how.curve * (1 - t**2)  # corners stay at y; centre drops for a smile
    centre -= 2.5 * how.lip * ((t * how.lip_side + 1) / 2) ** 2  # one side of the lip lifted
    gap = 2.6 * how.open * np.sqrt(1 - t**2)
    # A smiling upper lip stays flatter than the lower one, giving an open smile its crescent.
    upper = np.stack([x + half_w * t, centre - gap * (1 - 0.6 * max(how.curve, 0))], axis=1)
    lower = np.stack([x + half_w * t, centre + gap], axis=1)
    outline = np.round(np.concatenate([upper, lower[::-1]]) * SCALE).astype(np.int32)
    thickness = _px(0.6 if how.width < 0.8 and how.open < 0.1 else 0.9)  # pressed lips thinner
    if how.open > 0.05:
        cv2.fillPoly(canvas, [outline], round(who.skin * 0.15))
    cv2.polylines(canvas, [outline], True, ink, thickness)


def _apply_pose(canvas: np.ndarray, pose: _Pose, background: float) -> np.ndarray:
    """Rotate, scale and shift the face about the canvas centre, filling in with `background`.

    A constant fill rather than replicated borders: hair touching the top edge would otherwise
    be smeared into a stripe.
    """
    matrix = cv2.getRotationMatrix2D((CANVAS / 2, CANVAS / 2), pose.angle, pose.scale)
    matrix[:, 2] += (pose.dx * SCALE, pose.dy * SCALE)
    return cv2.warpAffine(
        canvas,
        matrix,
        (CANVAS, CANVAS),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=round(background),
    )


def _apply_lighting(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Side lighting as a linear gradient in a random direction, then brightness and contrast."""
    n = len(images)
    coords = (np.arange(IMAGE_SIZE, dtype=np.float32) - IMAGE_SIZE / 2) / (IMAGE_SIZE / 2)
    direction = rng.uniform(0, 2 * np.pi, n)
    strength = rng.uniform(0.0, 0.35, n)
    ramp = (
        np.cos(direction)[:, None, None] * coords[None, None, :]
        + np.sin(direction)[:, None, None] * coords[None, :, None]
    )
    images = images * (1 + strength[:, None, None] * ramp).astype(np.float32)
    contrast = rng.uniform(0.7, 1.2, n).astype(np.float32)[:, None, None]
    brightness = rng.uniform(-30, 30, n).astype(np.float32)[:, None, None]
    return (images - 128) * contrast + 128 + brightness


def _apply_noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur about a quarter of the faces slightly, add Gaussian sensor noise, round to uint8."""
    for i in np.flatnonzero(rng.random(len(images)) < 0.25):
        images[i] = cv2.GaussianBlur(images[i], (3, 3), rng.uniform(0.4, 0.8))
    sigma = rng.uniform(2.0, 8.0, len(images)).astype(np.float32)[:, None, None]
    images = images + sigma * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(np.round(images), 0, 255).astype(np.uint8)
