"""The privacy ledger: cumulative ε across rounds, budget planning and refusal."""

import pytest
import torch
from opacus.accountants import RDPAccountant

from emofl.client.federated.dp_training import plan_round, train_round
from emofl.common.data.federated_data import Faces
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.privacy.accounting import PrivacyLedger, noise_for_budget
from emofl.common.protocol.run_settings import RunSettings

DELTA = 1e-5


def test_ledger_composes_rounds_like_one_accountant_fed_the_whole_history():
    rounds = [(1.1, 0.05, 20), (1.1, 0.05, 20), (0.9, 0.1, 10), (1.1, 0.05, 5)]
    ledger = PrivacyLedger("rdp")
    reference = RDPAccountant()
    epsilons = []
    for sigma, q, steps in rounds:
        ledger.record(sigma, q, steps)
        for _ in range(steps):
            reference.step(noise_multiplier=sigma, sample_rate=q)
        epsilons.append(ledger.epsilon(DELTA))
    assert ledger.epsilon(DELTA) == pytest.approx(reference.get_epsilon(DELTA), rel=1e-9)
    assert epsilons == sorted(epsilons) and epsilons[0] < epsilons[-1]  # cumulative, growing
    assert ledger.steps == 55
    single_round = PrivacyLedger("rdp", [(1.1, 0.05, 20)]).epsilon(DELTA)
    assert ledger.epsilon(DELTA) > 2 * single_round  # not a per-round figure


def test_ledger_round_trips_through_plain_data():
    ledger = PrivacyLedger("prv", [(1.0, 0.1, 30)])
    again = PrivacyLedger.from_dict(ledger.to_dict())
    assert again == ledger
    assert again.epsilon(DELTA) == pytest.approx(ledger.epsilon(DELTA))


def test_unknown_accountant_is_rejected():
    with pytest.raises(ValueError, match="unknown accountant"):
        PrivacyLedger("gdp-ish")


def test_noise_for_budget_spends_the_budget_over_all_planned_steps():
    sigma = noise_for_budget(3.0, DELTA, 0.1, 200, "rdp")
    spent = PrivacyLedger("rdp", [(sigma, 0.1, 200)]).epsilon(DELTA)
    assert 2.95 < spent <= 3.0


def _faces(n: int = 96) -> Faces:
    generator = torch.Generator().manual_seed(0)
    return Faces(torch.randn(n, 1, 48, 48, generator=generator),
                 torch.randint(0, 7, (n,), generator=generator))


def test_client_trains_planned_rounds_then_refuses_over_budget():
    settings = RunSettings(rounds=2, epsilon=4.0, batch_size=32, model_width=8)
    faces, ledger = _faces(), PrivacyLedger("rdp")
    plan = plan_round(settings, len(faces))
    assert plan.sample_rate == pytest.approx(1 / 3) and plan.steps == 3
    for round_number in range(2):
        update = train_round(EmotionNet(width=8), faces, settings, ledger, seed=round_number)
        assert not update.refused and update.state_dict is not None
    assert ledger.history == [(plan.noise_multiplier, plan.sample_rate, 6)]
    assert 3.9 < ledger.epsilon(settings.delta) <= 4.0
    third = train_round(EmotionNet(width=8), faces, settings, ledger, seed=3)
    assert third.refused.startswith("budget exhausted") and third.state_dict is None
    assert ledger.steps == 6  # the refused round spent nothing


def test_dp_randomness_is_private_unless_a_seed_is_forced():
    """The server knows the run's seed, so a device's sampling and noise must not follow it."""
    settings = RunSettings(rounds=5, epsilon=8.0, batch_size=32, model_width=8)
    faces, model = _faces(), EmotionNet(width=8)

    def head_after(seed):
        update = train_round(model, faces, settings, PrivacyLedger("rdp"), seed=seed)
        return update.state_dict["head.weight"]

    assert not torch.equal(head_after(None), head_after(None))
    assert torch.equal(head_after(7), head_after(7))
