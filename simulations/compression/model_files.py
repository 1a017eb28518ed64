"""One file per compressed frame model: its VGG shape, weights and card in a single torch file.

A pruned model's channel counts are not a width `frame_store.build_model` can rebuild, so the
shape record of `vgg_shape` travels with the weights; a distilled student uses the same format.
These files live under runs/compression/, never in common/weights/.
"""

from pathlib import Path

from emofl.common.model.emotion_net import EmotionNet
from emofl.common.storage import atomic_io
from emofl.simulations.compression.vgg_shape import build_vgg, shape_of

REMEDY = "rerun the compression that wrote it"


def save_compressed(model: EmotionNet, path: str | Path, card: dict) -> None:
    """Write `model` with its shape and `card` to `path` atomically."""
    atomic_io.torch_save(path, {"shape": shape_of(model), "state_dict": model.state_dict(),
                                "card": card})


def load_compressed(path: str | Path) -> tuple[EmotionNet, dict]:
    """The model at `path` in eval mode, and its card."""
    saved = atomic_io.torch_load(path, REMEDY)
    model = build_vgg(saved["shape"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["card"]
