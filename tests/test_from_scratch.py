"""A federation that starts from a random model learns: the defaults' recipe on synthetic faces
(every other simulation test starts from a pre-trained model).

Without DP, so that the run is reproducible and the check cannot flake: DP noise is drawn from
the OS entropy pool on every device. What the defaults reach with DP at ε = 8 is a benchmark
(docs/benchmarks.md §9), not a test.
"""

import json

from emofl.common.protocol.run_settings import RunSettings
from emofl.simulations.federation.runner import simulate

CHANCE = 1 / 7


def test_a_federation_from_a_random_start_learns_well_above_chance(tmp_path):
    # A new default-sized backbone (width 16, depthwise pooling); two clients of 600 faces,
    # 20 local Adam steps on batches of 64 in each of three rounds. (The defaults' learning
    # rate of 2 is for DP-SGD's clipped gradients; unclipped ones would diverge at it.)
    settings = RunSettings(data="synthetic", num_clients=2, rounds=3, synthetic_size=600,
                           dp=False, alpha=0.0, sample_rate=0.0, batch_size=64,
                           local_steps=20, client_optimizer="adam", learning_rate=1e-3,
                           out=str(tmp_path))
    assert not settings.init_model and settings.model_pool == "depthwise"
    simulate(settings, progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["initial"]["accuracy"] < 1.5 * CHANCE
    assert metrics["rounds"][-1]["accuracy"] >= 2 * CHANCE
