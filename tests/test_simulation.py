"""End-to-end Flower simulations on synthetic faces: learning, cumulative ε, checkpoints, resume.

These start real Ray workers and real Opacus training, so they take a few minutes. As in the
product's FER2013 recipe, the federation starts from a model the server pre-trained on its own
public (here: synthetic, separately seeded) faces, then fine-tunes it with DP-SGD.
"""

import json
import math

import pytest
import torch

from emofl.common.privacy.ledger import PrivacyLedger
from emofl.common.protocol.run_settings import RunSettings
from emofl.server.federated.checkpoint import load_checkpoint
from emofl.server.federated.public_pretraining import PretrainSettings, pretrain
from emofl.simulations.federation.run_summary import format_summary, learning_warnings
from emofl.simulations.federation.runner import RunDirError, simulate

CHANCE = 1 / 7


@pytest.fixture(scope="module")
def public_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("public") / "public.pt"
    pretrain(PretrainSettings(data="synthetic", out=str(path), synthetic_size=1500, epochs=10,
                              model_width=8), progress=False)
    return str(path)


@pytest.fixture(scope="module")
def settings(public_model):
    def make(out, **changes) -> RunSettings:
        base = dict(data="synthetic", num_clients=3, rounds=2, epsilon=8.0, synthetic_size=300,
                    batch_size=32, local_epochs=2, alpha=0.0, init_model=public_model,
                    out=str(out))
        return RunSettings(**{**base, **changes})

    return make


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory, settings):
    out = tmp_path_factory.mktemp("dp_run")
    summary = simulate(settings(out), progress=False)
    return out, summary


def test_simulation_learns_above_chance_with_finite_cumulative_epsilon(dp_run):
    out, summary = dp_run
    metrics = json.loads((out / "metrics.json").read_text())
    rounds = metrics["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[-1]["accuracy"] > CHANCE + 0.1
    for r in rounds:
        assert sorted(c["id"] for c in r["clients"]) == [0, 1, 2]
        for client in r["clients"]:
            assert set(client) >= {"id", "num_examples", "epsilon", "delta", "noise_multiplier",
                                   "sample_rate", "steps", "max_grad_norm", "accountant"}
            assert math.isfinite(client["epsilon"]) and client["accountant"] == "rdp"
    first = {c["id"]: c for c in rounds[0]["clients"]}
    for client in rounds[1]["clients"]:  # cumulative: round 2 spends on top of round 1
        assert client["epsilon"] > first[client["id"]]["epsilon"]
        assert client["steps"] == 2 * first[client["id"]]["steps"]
        assert client["epsilon"] <= 8.0
    state = torch.load(out / "model.pt", weights_only=True)
    assert "head.weight" in state
    card = json.loads((out / "model_card.json").read_text())
    assert card["privacy"]["delta"] == 1e-5 and card["privacy"]["accountant"] == "rdp"
    assert (out / "accuracy_loss.png").stat().st_size > 0 and (out / "epsilon.png").exists()
    assert summary["warnings"] == []


def test_a_run_that_ends_at_chance_says_so_and_how_to_do_better(dp_run):
    _, summary = dp_run
    scratch = RunSettings(data="synthetic", rounds=3)
    assert learning_warnings(scratch, summary["accuracy"]) == []
    (warning,) = learning_warnings(scratch, CHANCE)
    assert "chance level (14.3%" in warning and "3 rounds from a random start" in warning
    assert "--init-model" in warning and "emofl demo" in warning
    printed = format_summary({**summary, "warnings": [warning]})
    assert f"warning: {warning}" in printed.splitlines()


def test_checkpoint_holds_model_round_ledgers_and_metrics(dp_run):
    out, _ = dp_run
    checkpoint = load_checkpoint(out)
    assert checkpoint.round == 2 and len(checkpoint.rounds) == 2
    assert sorted(checkpoint.ledgers) == [0, 1, 2]
    steps = {c["id"]: c["steps"] for c in checkpoint.rounds[-1]["clients"]}
    for cid, ledger in checkpoint.ledgers.items():
        assert PrivacyLedger.from_state_dict(ledger).steps == steps[cid]


def test_existing_run_is_not_overwritten_without_resume(dp_run, settings):
    out, _ = dp_run
    before = (out / "metrics.json").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        simulate(settings(out), progress=False)
    assert (out / "metrics.json").read_text() == before


def test_resume_continues_from_the_checkpoint_and_refuses_over_budget(dp_run, settings):
    out, _ = dp_run
    before = json.loads((out / "metrics.json").read_text())["rounds"]
    simulate(settings(out, rounds=3, resume=True), progress=False)
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3] and rounds[:2] == before
    # The planned 2 rounds spent each client's whole ε: every client refuses round 3.
    assert all(c["refused"].startswith("budget exhausted") for c in rounds[2]["clients"])
    assert load_checkpoint(out).round == 3


def test_interrupted_run_resumes_with_its_saved_settings(tmp_path, settings):
    first = settings(tmp_path, rounds=1, epsilon=50.0, noise_multiplier=1.0)
    simulate(first, progress=False)
    after_one = load_checkpoint(tmp_path)
    # Resume may change the rounds only; asking for another setting is refused, not ignored.
    with pytest.raises(RunDirError, match="asked to change: num-clients"):
        simulate(settings(tmp_path, rounds=2, resume=True, num_clients=5), progress=False)
    simulate(settings(tmp_path, rounds=2, resume=True), progress=False)
    rounds = json.loads((tmp_path / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert len(rounds[1]["clients"]) == 3 and not any(c["refused"] for c in rounds[1]["clients"])
    for before, now in zip(rounds[0]["clients"], rounds[1]["clients"], strict=True):
        assert now["steps"] == 2 * before["steps"] and now["epsilon"] > before["epsilon"]
    resumed = load_checkpoint(tmp_path)
    assert resumed.round == 2
    changed = any(not torch.equal(after_one.model_state[k], resumed.model_state[k])
                  for k in resumed.model_state)
    assert changed


def test_only_a_ray_start_failure_is_retried():
    from emofl.simulations.federation.runner import ray_did_not_start

    stalled = RuntimeError("Timed out waiting for file /tmp/ray/session_x/gcs_server_port_abc")
    assert ray_did_not_start(stalled)
    assert ray_did_not_start(Exception("The current node timed out during startup. This could "
                                       "happen because some of the raylet failed to startup"))
    assert not ray_did_not_start(RuntimeError("Maybe you called ray.init twice by accident?"))


def test_a_stalled_ray_start_is_retried_and_the_run_completes(tmp_path, settings, monkeypatch):
    """A GCS that exits at once (unknown system config) never writes its port file, exactly
    as a stalled one: the first start times out (after 5 s here, 30 s in Ray's default), the
    second must carry the run."""
    import ray
    import ray._private.node as ray_node

    real_init, real_wait, starts = ray.init, ray_node.wait_for_persisted_port, []

    def first_start_stalls(**kwargs):
        starts.append(kwargs)
        if len(starts) == 1:
            kwargs = {**kwargs, "_system_config": {"not_a_ray_setting": 1}}
        return real_init(**kwargs)

    def impatient_first_wait(*args, **kwargs):
        return real_wait(*args, **({"timeout_ms": 5000} if len(starts) == 1 else {}), **kwargs)

    monkeypatch.setattr(ray, "init", first_start_stalls)
    monkeypatch.setattr(ray_node, "wait_for_persisted_port", impatient_first_wait)
    summary = simulate(settings(tmp_path / "run", rounds=1, num_clients=2), progress=False)
    assert len(starts) >= 2  # a real start may stall too on a loaded machine
    assert summary["rounds"] == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [c["id"] for c in metrics["rounds"][0]["clients"]] == [0, 1]
