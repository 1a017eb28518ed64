"""The README demo: the FER2013 recipe in miniature on built-in synthetic faces.

The server pre-trains on public faces it drew itself (synthetic, from a seed no client uses);
then N clients fine-tune the model federated, each with DP-SGD on its own synthetic faces.
"""

import time
from pathlib import Path

from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.public_pretraining import PretrainSettings, pretrain
from emofl.simulations.federation.runner import simulate


def default_demo_dir() -> str:
    return time.strftime("runs/demo-%Y%m%d-%H%M%S")


def run_demo(out: str, clients: int = 4, rounds: int = 5, epsilon: float = 8.0,
             command: str = "") -> dict:
    """Pre-train on public synthetic faces, then simulate the DP federation; the run summary."""
    run_dir = Path(out)
    public_model = run_dir / "public_pretrained.pt"
    if not public_model.exists():
        pretrain(PretrainSettings(data="synthetic", out=str(public_model), synthetic_size=2000,
                                  epochs=12, model_width=16, command=command))
    settings = RunSettings(
        data="synthetic", num_clients=clients, rounds=rounds, epsilon=epsilon,
        synthetic_size=400, batch_size=32, sample_rate=0.0, local_steps=0, local_epochs=1,
        alpha=0.5, trainable="head", client_optimizer="adam", learning_rate=3e-4,
        init_model=str(public_model), out=str(run_dir / "federated"),
        command=command,
    )
    return simulate(settings)
