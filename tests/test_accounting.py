"""The privacy ledger: events as values, one state API, cumulative ε across rounds, budget
planning and refusal."""

import dataclasses
import json

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from emofl.client.federated.dp_training import plan_round, train_round
from emofl.common.data.federated_data import Faces
from emofl.common.errors import UserError
from emofl.common.model.emotion_net import EmotionNet
from emofl.common.privacy.budget import noise_for_budget
from emofl.common.privacy.events import (
    ACCOUNTED_RELATION,
    DpEvent,
    NeighbouringRelation,
    Sampler,
)
from emofl.common.privacy.ledger import FORMAT_VERSION, LedgerError, PrivacyLedger
from emofl.common.protocol.run_settings import RunSettings

DELTA = 1e-5


def test_ledger_composes_rounds_like_one_accountant_fed_the_whole_history():
    rounds = [(1.1, 0.05, 20), (1.1, 0.05, 20), (0.9, 0.1, 10), (1.1, 0.05, 5)]
    ledger = PrivacyLedger("rdp")
    reference = RDPAccountant()
    epsilons = []
    for sigma, q, steps in rounds:
        ledger.record(DpEvent(sigma, q, steps))
        for _ in range(steps):
            reference.step(noise_multiplier=sigma, sample_rate=q)
        epsilons.append(ledger.epsilon(DELTA))
    assert ledger.epsilon(DELTA) == pytest.approx(reference.get_epsilon(DELTA), rel=1e-9)
    assert epsilons == sorted(epsilons) and epsilons[0] < epsilons[-1]  # cumulative, growing
    assert ledger.steps == 55
    assert ledger.events == [DpEvent(1.1, 0.05, 40), DpEvent(0.9, 0.1, 10), DpEvent(1.1, 0.05, 5)]
    single_round = PrivacyLedger("rdp", [DpEvent(1.1, 0.05, 20)]).epsilon(DELTA)
    assert ledger.epsilon(DELTA) > 2 * single_round  # not a per-round figure


@pytest.mark.parametrize("accountant, reference", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_ledger_epsilon_is_a_fresh_opacus_accountants_for_the_same_history(accountant, reference):
    events = [DpEvent(1.0, 0.1, 30), DpEvent(0.8, 0.2, 7)]
    opacus = reference()
    for event in events:
        for _ in range(event.steps):
            opacus.step(noise_multiplier=event.noise_multiplier, sample_rate=event.sample_rate)
    ledger = PrivacyLedger(accountant, events)
    assert ledger.epsilon(DELTA) == pytest.approx(opacus.get_epsilon(DELTA), rel=1e-6)
    what_if = PrivacyLedger(accountant, events[:1]).epsilon(DELTA, extra=events[1:])
    assert what_if == ledger.epsilon(DELTA)
    assert PrivacyLedger(accountant).epsilon(DELTA) == 0.0


def test_events_are_frozen_values_that_validate():
    event = DpEvent(1, 0.5, 3, "poisson")
    assert event == DpEvent(1.0, 0.5, 3) and event.sampler is Sampler.POISSON
    assert isinstance(event.noise_multiplier, float) and hash(event) == hash(DpEvent(1.0, 0.5, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.steps = 4
    assert DpEvent.from_dict(event.to_dict()) == event
    assert json.loads(json.dumps(event.to_dict())) == event.to_dict()
    assert DpEvent(0.0, 1.0, 1).noise_multiplier == 0.0  # no noise, full batch: still an event


@pytest.mark.parametrize("values, field", [
    ((-0.1, 0.5, 3), "noise_multiplier"), ((float("nan"), 0.5, 3), "noise_multiplier"),
    (("1.0", 0.5, 3), "noise_multiplier"), ((1.0, 0.0, 3), "sample_rate"),
    ((1.0, 1.5, 3), "sample_rate"), ((1.0, 0.5, 0), "steps"), ((1.0, 0.5, 2.5), "steps"),
    ((1.0, 0.5, True), "steps"), ((1.0, 0.5, 3, "uniform"), "sampler"),
])
def test_an_invalid_event_is_refused_naming_the_field(values, field):
    with pytest.raises(ValueError, match=field):
        DpEvent(*values)


def test_ledger_state_round_trips_through_json_with_the_relation_as_an_enum():
    ledger = PrivacyLedger("prv", [DpEvent(1.0, 0.1, 30), DpEvent(0.7, 0.1, 4)])
    state = json.loads(json.dumps(ledger.state_dict()))
    assert state["format_version"] == FORMAT_VERSION and state["accountant"] == "prv"
    assert NeighbouringRelation(state["neighbouring_relation"]) is ACCOUNTED_RELATION
    assert ACCOUNTED_RELATION is NeighbouringRelation.ADD_OR_REMOVE_ONE
    assert ACCOUNTED_RELATION.describe() == "add/remove one example (sample-level)"  # cards
    assert state["events"][0] == {"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 30,
                                  "sampler": "poisson"}
    again = PrivacyLedger.from_state_dict(state)
    assert again == ledger
    assert again.epsilon(DELTA) == ledger.epsilon(DELTA)


def test_the_old_ledger_format_loads_with_the_same_epsilon():
    old = {"accountant": "rdp", "history": [[1.1, 0.05, 40], [0.9, 0.1, 10]]}
    ledger = PrivacyLedger.from_state_dict(json.loads(json.dumps(old)))
    assert ledger.events == [DpEvent(1.1, 0.05, 40), DpEvent(0.9, 0.1, 10)]
    reference = RDPAccountant()
    reference.history = [(1.1, 0.05, 40), (0.9, 0.1, 10)]  # what the old ledger computed
    assert ledger.epsilon(DELTA) == reference.get_epsilon(DELTA)
    assert ledger.state_dict()["format_version"] == FORMAT_VERSION  # saved migrated


@pytest.mark.parametrize("state, says", [
    ([1, 2], "JSON object"),
    ({"accountant": "rdp"}, "format_version"),
    ({"accountant": "rdp", "history": [[1.0, 0.1]]}, "ledger event 0"),
    ({"accountant": "rdp", "history": [[1.0, 2.0, 3]]}, "sample_rate"),
    ({"accountant": "gdp", "history": []}, "unknown ledger accountant"),
    ({"format_version": 99, "accountant": "rdp"}, "format version 99"),
    ({"format_version": 2, "accountant": "rdp", "events": []}, "missing ledger key"),
    ({"format_version": 2, "accountant": "rdp", "neighbouring_relation": "replace_one",
      "events": []}, "relation"),
    ({"format_version": 2, "accountant": "rdp", "neighbouring_relation": "add_or_remove_one",
      "events": {}}, "must be a list"),
    ({"format_version": 2, "accountant": "rdp", "neighbouring_relation": "add_or_remove_one",
      "events": [{"noise_multiplier": 1.0, "sample_rate": 0.1}]}, "missing event key"),
    ({"format_version": 2, "accountant": "rdp", "neighbouring_relation": "add_or_remove_one",
      "events": [], "extra": 1}, "unknown ledger key"),
])
def test_a_malformed_state_is_a_one_line_ledger_error(state, says):
    with pytest.raises(LedgerError, match=says) as caught:
        PrivacyLedger.from_state_dict(state)
    assert isinstance(caught.value, UserError) and "\n" not in str(caught.value)


def test_unknown_accountant_is_rejected():
    with pytest.raises(ValueError, match="unknown accountant"):
        PrivacyLedger("gdp-ish")


def test_noise_for_budget_spends_the_budget_over_all_planned_steps():
    sigma = noise_for_budget(3.0, DELTA, 0.1, 200, "rdp")
    spent = PrivacyLedger("rdp", [DpEvent(sigma, 0.1, 200)]).epsilon(DELTA)
    assert 2.95 < spent <= 3.0


def _faces(n: int = 96) -> Faces:
    generator = torch.Generator().manual_seed(0)
    return Faces(torch.randn(n, 1, 48, 48, generator=generator),
                 torch.randint(0, 7, (n,), generator=generator))


def test_client_trains_planned_rounds_then_refuses_over_budget():
    settings = RunSettings(rounds=2, epsilon=4.0, batch_size=32, sample_rate=0.0, local_steps=0,
                           model_width=8)
    faces, ledger = _faces(), PrivacyLedger("rdp")
    plan = plan_round(settings, len(faces))
    assert plan.sample_rate == pytest.approx(1 / 3) and plan.steps == 3
    for round_number in range(2):
        update = train_round(EmotionNet(width=8), faces, settings, ledger, seed=round_number)
        assert not update.refused and update.state_dict is not None
    assert ledger.events == [dataclasses.replace(plan, steps=6)]
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
