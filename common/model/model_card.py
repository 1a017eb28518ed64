"""Model cards: the JSON beside every model file saying what it is, how it was trained, what ε
protects and how well it does. `model_card` is the one builder every producer uses (public
pre-training, a federated run, the temporal model); `run_card` fills it for a federated run.
"""

from emofl.common.data.classes import CLASSES
from emofl.common.model.training import Evaluation
from emofl.common.privacy.events import ACCOUNTED_RELATION
from emofl.common.protocol.run_settings import RunSettings


def _privacy_section(settings: RunSettings, ledgers: dict[int, dict], rounds: list[dict]) -> dict:
    if not settings.dp:
        return {"dp": False, "guarantee": "none: trained without differential privacy"}
    last = {c["id"]: c for r in rounds for c in r["clients"] if not c["refused"]}
    epsilons = [c["epsilon"] for c in last.values()]
    return {
        "dp": True,
        "mechanism": "DP-SGD (Opacus), Poisson sampling, per-sample clipping",
        "neighbouring_relation": ACCOUNTED_RELATION.describe(),
        "unit": "one face image of one client's local data set",
        "accountant": settings.accountant,
        "epsilon_budget": settings.epsilon,
        "epsilon_max_spent": max(epsilons) if epsilons else 0.0,
        "delta": settings.delta,
        "max_grad_norm": settings.max_grad_norm,
        "per_client": {
            str(cid): {k: c[k] for k in ("epsilon", "noise_multiplier", "sample_rate", "steps",
                                         "num_examples")}
            for cid, c in sorted(last.items())
        },
        "ledgers": {str(k): v for k, v in sorted(ledgers.items())},
    }


CLASSES_ORDER = "FER2013: " + ", ".join(CLASSES)


def model_card(*, name: str, training: dict, privacy: dict | None = None,
               validation: dict | None = None, **sections: dict) -> dict:
    """A card: name, class order, how it was trained (with the command that did it), what
    privacy it has, its validation, and any further named sections."""
    card = {"name": name, "classes_order": CLASSES_ORDER, "training": training}
    if privacy is not None:
        card["privacy"] = privacy
    card.update(sections)
    if validation is not None:
        card["validation"] = validation
    return card


def run_card(settings: RunSettings, rounds: list[dict], ledgers: dict[int, dict],
             evaluation: Evaluation, public_split: dict | None) -> dict:
    """The card of a federated run's final model."""
    return model_card(
        name="emofl frame model",
        training={
            "method": "FedAvg (FedAvgM with server momentum) over Flower of local DP-SGD updates",
            "data": settings.data,
            "validation_data": settings.val_data or "seeded hold-out of the training data",
            "clients": settings.num_clients,
            "rounds_completed": len(rounds),
            "rounds_planned": settings.rounds,
            "alpha": settings.alpha if settings.alpha > 0 else "iid",
            "local_epochs": settings.local_epochs,
            "batch_size": settings.batch_size,
            "sample_rate": settings.sample_rate or "1/ceil(n_i/batch_size)",
            "local_steps": settings.local_steps or "local_epochs x 1/q",
            "augment_multiplicity": settings.augment_multiplicity,
            "client_optimizer": settings.client_optimizer,
            "learning_rate": settings.learning_rate,
            "server_learning_rate": settings.server_learning_rate,
            "server_momentum": settings.server_momentum,
            "trainable": settings.trainable,
            "secure_aggregation": settings.secure_agg,
            "init_model": settings.init_model or None,
            "public_split": public_split,
            "seed": settings.seed,
            "command": settings.command,
        },
        privacy=_privacy_section(settings, ledgers, rounds),
        validation=evaluation.to_dict(),
    )
