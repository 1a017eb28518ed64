"""Copy a finished federated run's model into the package as the shipped frame model.

Usage: python -m emofl.simulations.training.ship_model RUN_DIR
The shipped card is the run's card plus the card of the public pre-training it started from,
so that one file says what the weights saw, what ε protects and how to retrain them.
"""

import argparse
import json
import shutil
from pathlib import Path

from emofl.common.model.frame_store import SHIPPED_MODEL
from emofl.common.model.model_cards import card_path, read_card
from emofl.common.storage import atomic_io


def ship(run_dir: Path) -> dict:
    model = run_dir / "model.pt"
    card = read_card(model)
    init = card["training"].get("init_model")
    if init:
        public = read_card(init)
        training = {k: v for k, v in public["training"].items() if k != "history"}
        card["public_pretraining"] = training | {
            "public_split": public.get("public_split"),
            "validation_accuracy": public.get("validation", {}).get("accuracy"),
        }
    SHIPPED_MODEL.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, SHIPPED_MODEL)
    atomic_io.write_json(card_path(SHIPPED_MODEL), card)
    return {"shipped": str(SHIPPED_MODEL), "bytes": SHIPPED_MODEL.stat().st_size,
            "validation_accuracy": card["validation"]["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    print(json.dumps(ship(parser.parse_args().run_dir), indent=2))


if __name__ == "__main__":
    main()
