"""The faces compression may learn from: the public split the shipped model was pre-trained on.

The shipped model's card records the seeded split `emofl pretrain` declared public
(`split_public`, fraction 0.5, seed 0); the private half belongs to the federated clients and
val is for selection only, so fine-tuning, distillation and int8 calibration use these faces
and nothing else.
"""

from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import Faces, same_data, to_faces
from emofl.common.data.partition import split_public
from emofl.common.edge.calibration import recorded_public_split
from emofl.common.errors import UserError
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.model.frame_store import load_model


def public_split(card: dict, data: str) -> dict:
    """The public split recorded in a frame model's `card`; UserError unless it was drawn from
    the training set `data`, since otherwise no face of `data` is known to be public."""
    split = recorded_public_split(card)
    if split is None or not same_data(str(split.get("data", "")), data):
        raise UserError(f"{data}: the teacher's card records no public split of it")
    return split


def public_training_faces(card: dict, data: str) -> Faces:
    """The preprocessed public faces of the training set `data`, as the teacher's card declares."""
    split = public_split(card, data)
    dataset = load_dataset(data)
    public, _ = split_public(len(dataset), float(split["fraction"]), int(split["seed"]))
    return to_faces(dataset.subset(public))


def validation_faces(data: str) -> Faces:
    """All preprocessed faces of the validation set `data`."""
    return to_faces(load_dataset(data))


def teacher_and_faces(data: str, val_data: str) -> tuple[EmotionNet, dict, Faces, Faces]:
    """What both compressions start from: the shipped model, its card, the public faces of
    `data` it declares, and the validation faces of `val_data`."""
    teacher, card = load_model()
    return teacher, card, public_training_faces(card, data), validation_faces(val_data)
