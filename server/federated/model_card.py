"""The model card written beside a federated run's final model."""

from emofl.common.model.training import Evaluation
from emofl.common.privacy.accounting import NEIGHBOURING_RELATION
from emofl.common.protocol.run_settings import RunSettings


def _privacy_section(settings: RunSettings, ledgers: dict[int, dict], rounds: list[dict]) -> dict:
    if not settings.dp:
        return {"dp": False, "guarantee": "none: trained without differential privacy"}
    last = {c["id"]: c for r in rounds for c in r["clients"] if not c["refused"]}
    epsilons = [c["epsilon"] for c in last.values()]
    return {
        "dp": True,
        "mechanism": "DP-SGD (Opacus), Poisson sampling, per-sample clipping",
        "neighbouring_relation": NEIGHBOURING_RELATION,
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


def build_model_card(settings: RunSettings, rounds: list[dict], ledgers: dict[int, dict],
                     evaluation: Evaluation, public_split: dict | None) -> dict:
    """What the final model is, how it was trained, what ε protects, and how well it does."""
    return {
        "name": "emofl frame model",
        "classes_order": "FER2013: angry, disgust, fear, happy, sad, surprise, neutral",
        "training": {
            "method": "federated averaging (Flower) of local DP-SGD updates",
            "data": settings.data,
            "validation_data": settings.val_data or "seeded hold-out of the training data",
            "clients": settings.num_clients,
            "rounds_completed": len(rounds),
            "rounds_planned": settings.rounds,
            "alpha": settings.alpha if settings.alpha > 0 else "iid",
            "local_epochs": settings.local_epochs,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "trainable": settings.trainable,
            "secure_aggregation": settings.secure_agg,
            "init_model": settings.init_model or None,
            "public_split": public_split,
            "seed": settings.seed,
            "command": settings.command,
        },
        "privacy": _privacy_section(settings, ledgers, rounds),
        "validation": evaluation.to_dict(),
    }
