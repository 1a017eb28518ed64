"""`emofl audit --empirical`: canaries go through Opacus' clipping, the one-run bound and the GDP
estimate agree with their definitions, a correct DP-SGD passes and one without noise fails."""

import math

import numpy as np
import pytest
import torch

from emofl.common.data.federated_data import to_faces
from emofl.common.data.synthetic import make_synthetic_faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.simulations.audit.canary_dpsgd import run_with_canaries
from emofl.simulations.audit.empirical import empirical_audit
from emofl.simulations.audit.one_run_bound import (
    epsilon_lower_bound,
    gaussian_dp_estimate,
    one_run_bound,
    p_value,
)


def test_canaries_are_clipped_by_opacus_and_scored_by_what_they_added():
    torch.set_num_threads(1)
    faces = to_faces(make_synthetic_faces(60, seed=1))
    run = run_with_canaries(EmotionNet(width=8), faces, canaries=300, noise_multiplier=0.0,
                            sample_rate=0.2, steps=8, seed=3)
    assert np.abs(run.scores[~run.included]).max() < 1e-3  # the faces' part is taken out
    inside = run.scores[run.included]
    assert np.abs(inside - np.round(inside)).max() < 1e-3  # C = 1 per draw, not 10: clipped
    assert 0.1 < inside.mean() / 8 < 0.3  # Poisson-sampled at q = 0.2 over 8 steps


def test_the_one_run_bound_has_the_papers_ceiling_and_respects_chance():
    assert epsilon_lower_bound(1000, 1000, 1000, 1e-5, 0.05) == pytest.approx(5.78, abs=0.01)
    assert epsilon_lower_bound(1000, 1000, 500, 1e-5, 0.05) == 0.0  # coin-flip guessing
    assert p_value(1000, 200, 150, 0.5, 1e-5) < 0.05 < p_value(1000, 200, 150, 1.5, 1e-5)
    rng = np.random.default_rng(0)
    included = rng.random(1000) < 0.5
    assert one_run_bound(rng.normal(size=1000), included, 1e-5).epsilon < 0.5


def test_the_gdp_estimate_recovers_a_gaussian_mechanisms_epsilon():
    from dp_accounting import dp_event
    from dp_accounting.pld import PLDAccountant

    rng = np.random.default_rng(1)
    included = rng.random(40000) < 0.5
    scores = rng.normal(size=40000) + included * 1.0  # μ = 1: the Gaussian mechanism, σ = 1
    accountant = PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_event.GaussianDpEvent(1.0))
    exact = accountant.get_epsilon(1e-5)
    assert gaussian_dp_estimate(scores, included, 1e-5) == pytest.approx(exact, rel=0.05)
    assert math.isinf(gaussian_dp_estimate(included * 1.0, included, 1e-5))


def test_a_correct_dp_sgd_passes_its_claim():
    audit = empirical_audit(claimed_epsilon=1.0, canaries=100, faces=100, steps=20, seed=2)
    assert audit.passed and audit.bound.epsilon <= 1.0
    assert audit.noise_multiplier > 1


def test_claiming_epsilon_1_with_the_noise_switched_off_fails(capsys):
    from emofl.cli import main

    code = main(["audit", "--empirical", "--claimed-epsilon", "1", "--without-noise",
                 "--canaries", "100", "--steps", "15", "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert '"passed": false' in captured.out and '"noise_multiplier": 0.0' in captured.out
    error = captured.err.strip().splitlines()
    assert len(error) == 1 and "exceeds the claimed ε=1" in error[0]
