"""Which faces calibrate an int8 model: public faces only, never a client's.

With a FER2013 data set given, the faces are the public split recorded in the model's card
(the seeded fraction the server pre-trained on, `split_public`), and only when the data set is
the one that split was drawn from; otherwise they are the built-in synthetic faces, which are
nobody's. Activation ranges computed from these faces ship inside the int8 model.
"""

from pathlib import Path

import numpy as np

from emofl.common.data.datasets import load_dataset
from emofl.common.data.federated_data import same_data
from emofl.common.data.partition import split_public
from emofl.common.data.preprocessing import preprocess_faces
from emofl.common.edge.files import EdgeModelError

# Enough faces for stable min/max ranges; more only slow the export down.
CALIBRATION_FACES = 512
CALIBRATION_SEED = 0
SYNTHETIC_CALIBRATION_SEED = 104_729  # apart from the seeds training draws synthetic faces with


def recorded_public_split(card: dict) -> dict | None:
    """The public split a frame model's card records: a pre-trained model's own, or that of
    the model a federated run started from (a run card's "training", the shipped card's
    "public_pretraining")."""
    for section in (card, card.get("training"), card.get("public_pretraining")):
        if isinstance(section, dict) and isinstance(section.get("public_split"), dict):
            return section["public_split"]
    return None


def calibration_faces(card: dict, data: str | None,
                      limit: int = CALIBRATION_FACES) -> tuple[np.ndarray, dict]:
    """Preprocessed public faces (n, 1, 48, 48), at most `limit`, and how they were chosen;
    EdgeModelError when `data` is given but the card records no public split of it."""
    if data is None:
        faces = load_dataset("synthetic", synthetic_size=limit, seed=SYNTHETIC_CALIBRATION_SEED)
        return preprocess_faces(faces.images), {
            "faces": "built-in synthetic", "n": len(faces), "seed": SYNTHETIC_CALIBRATION_SEED}
    split = recorded_public_split(card)
    if split is None or not same_data(str(split.get("data", "")), data):
        recorded = f"a public split of {split.get('data')}" if split else "no public split"
        raise EdgeModelError(f"--calibration-data {data}: the model's card records {recorded}, "
                             "so no face of it is known to be public; omit the option to "
                             "calibrate on synthetic faces")
    dataset = load_dataset(data)
    public, _ = split_public(len(dataset), float(split["fraction"]), int(split["seed"]))
    chosen = np.random.default_rng(CALIBRATION_SEED).permutation(public)[:limit]
    return preprocess_faces(dataset.images[np.sort(chosen)]), {
        "faces": "the public split in the model's card", "data": str(Path(data)),
        "fraction": split["fraction"], "split_seed": split["seed"], "n": len(chosen),
        "seed": CALIBRATION_SEED}
