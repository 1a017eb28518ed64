"""Random training augmentation applied to whole batches of preprocessed faces.

Webcam faces vary in pose, framing and exposure; small random flips, rotations, zooms, shifts
and brightness/contrast changes make the model robust to that. Geometry is one batched affine
warp (a single grid_sample call) so augmentation costs a few milliseconds per batch, and all
randomness comes from the caller's generator so a training run is reproducible from its seed.
"""

import math

import torch
import torch.nn.functional as F

from emofl.common.data.face_dataset import IMAGE_SIZE

MAX_ROTATION_DEG = 10.0
SCALE_RANGE = (0.9, 1.1)
MAX_SHIFT_PX = 2.0
MAX_BRIGHTNESS = 0.2  # additive, in standardised input units
MAX_CONTRAST = 0.2  # relative change of the deviation from each face's mean


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A randomly flipped, rotated, scaled, shifted and brightness/contrast-jittered copy of the
    standardised face batch `x` (B, 1, 48, 48); draws all randomness from `generator`."""
    if x.ndim != 4 or x.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a (B, 1, 48, 48) batch, got {tuple(x.shape)}")
    batch = x.shape[0]
    # One draw for all random numbers keeps the stream layout simple and reproducible.
    u = torch.rand(batch, 7, generator=generator, device=generator.device)
    u = u.to(device=x.device, dtype=x.dtype)
    flip = torch.where(u[:, 0] < 0.5, -1.0, 1.0).to(x.dtype)
    angle = (2 * u[:, 1] - 1) * math.radians(MAX_ROTATION_DEG)
    scale = SCALE_RANGE[0] + u[:, 2] * (SCALE_RANGE[1] - SCALE_RANGE[0])
    # affine_grid works in [-1, 1] coordinates, where one pixel is 2 / IMAGE_SIZE wide.
    shift = (2 * u[:, 3:5] - 1) * (MAX_SHIFT_PX * 2 / IMAGE_SIZE)
    brightness = (2 * u[:, 5] - 1) * MAX_BRIGHTNESS
    contrast = 1 + (2 * u[:, 6] - 1) * MAX_CONTRAST

    # theta maps output coordinates to input coordinates: dividing by scale zooms in for
    # scale > 1; the flip mirrors the input's x axis.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, padding_mode="border", align_corners=False)

    mean = warped.mean(dim=(1, 2, 3), keepdim=True)
    return (warped - mean) * contrast.view(-1, 1, 1, 1) + mean + brightness.view(-1, 1, 1, 1)
