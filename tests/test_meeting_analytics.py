"""Meeting analytics: P_t, E_i(t), S_i (whole and windowed) and alerts against hand-computed
cases."""

import numpy as np
import pytest

from emofl.client.meeting.analytics import (
    DEFAULT_WEIGHTS,
    MeetingAnalytics,
    NegativeStateAlerts,
    engagement,
    parse_weights,
    room_distribution,
    stability,
    windowed_stability,
)
from emofl.common.data.classes import CLASSES

ANGRY, FEAR, HAPPY, SAD, NEUTRAL = (CLASSES.index(c) for c in
                                    ("angry", "fear", "happy", "sad", "neutral"))


def one_hot(index: int) -> np.ndarray:
    row = np.zeros(7)
    row[index] = 1.0
    return row


def test_room_distribution_is_the_mean_over_participants():
    a = np.array([0.5, 0, 0, 0.5, 0, 0, 0])
    b = np.array([0, 0, 0, 1.0, 0, 0, 0])
    assert np.allclose(room_distribution(np.stack([a, b])), [0.25, 0, 0, 0.75, 0, 0, 0])
    assert np.allclose(room_distribution(np.zeros((0, 7))), 0)


def test_engagement_is_the_expected_weight():
    weights = parse_weights("happy=1,neutral=0.5,sad=0")
    probs = np.zeros(7)
    probs[[HAPPY, NEUTRAL, SAD]] = [0.2, 0.6, 0.2]
    assert engagement(probs, weights) == pytest.approx(0.2 * 1 + 0.6 * 0.5 + 0.2 * 0)
    batch = np.stack([one_hot(HAPPY), one_hot(SAD)])
    assert np.allclose(engagement(batch, weights), [1.0, 0.0])


def test_parse_weights_overrides_named_classes_only():
    weights = parse_weights(" Happiness = 0.7 , sad=0.1")  # synonyms and spaces accepted
    assert weights[HAPPY] == 0.7 and weights[SAD] == 0.1
    assert weights[NEUTRAL] == DEFAULT_WEIGHTS["neutral"]
    assert np.allclose(parse_weights(""), [DEFAULT_WEIGHTS[c] for c in CLASSES])


@pytest.mark.parametrize("text, fragment", [
    ("joyful=1", "expected CLASS=NUMBER"),
    ("happy", "expected CLASS=NUMBER"),
    ("happy=lots", "not a number"),
    ("happy=-1", "non-negative"),
    ("happy=nan", "finite"),
])
def test_parse_weights_rejects_bad_items(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_weights(text)


def test_stability_sums_l1_changes_over_T():
    series = np.stack([one_hot(HAPPY), one_hot(SAD), one_hot(SAD), 0.5 * (one_hot(SAD)
                                                                           + one_hot(HAPPY))])
    # |P2-P1| = 2, |P3-P2| = 0, |P4-P3| = 1; S = 3 / T with T = 4
    assert stability(series) == pytest.approx(0.75)
    assert stability(series[:1]) == 0.0
    assert stability(np.repeat(series[:1], 5, axis=0)) == 0.0


def test_windowed_stability_uses_the_last_seconds_only():
    series = np.stack([one_hot(HAPPY), one_hot(SAD), one_hot(SAD), one_hot(HAPPY)])
    times = np.array([0.0, 1.0, 2.0, 3.0])
    # window 2 s: steps in (t-2, t] -> t=0: [0]; t=1: [0,1]; t=2: [1,2]; t=3: [2,3]
    expected = [0.0, 2 / 2, 0 / 2, 2 / 2]
    assert np.allclose(windowed_stability(times, series, 2.0), expected)
    # a window covering everything gives the whole-meeting S_i at the last step
    assert windowed_stability(times, series, 100.0)[-1] == pytest.approx(stability(series))
    with pytest.raises(ValueError):
        windowed_stability(times, series, 0)


def test_alert_fires_once_a_negative_state_outlasts_the_threshold():
    alerts = NegativeStateAlerts(min_seconds=3.0)
    labels = [SAD, SAD, FEAR, SAD, SAD, HAPPY, SAD]  # at t = 0..6 s
    fired = [alerts.update(7, float(t), label) for t, label in enumerate(labels)]
    # the run 0..4 s lasts more than 3 s from t = 4 on; it fires once
    assert [a is not None for a in fired] == [False, False, False, False, True, False, False]
    (alert,) = alerts.finish()
    assert (alert.participant, alert.emotion, alert.start_s, alert.end_s) == (7, "sad", 0.0, 4.0)
    assert alert.duration_s == 4.0


def test_alert_runs_break_on_gaps_and_are_per_participant():
    alerts = NegativeStateAlerts(min_seconds=2.0, max_gap_s=1.0)
    for t in (0.0, 0.5, 1.0, 3.0, 3.5):  # a 2 s gap after t = 1: no run lasts over 2 s
        alerts.update(1, t, ANGRY)
        alerts.update(2, t, HAPPY)
    for t in np.arange(0, 2.6, 0.5):
        alerts.update(3, 10 + t, ANGRY)
    result = alerts.finish()
    assert [(a.participant, a.emotion, a.start_s, a.end_s) for a in result] == [
        (3, "angry", 10.0, 12.5)]


def test_meeting_analytics_summary_by_hand():
    analytics = MeetingAnalytics(parse_weights("happy=1,sad=0,neutral=0.5"), window_s=10.0,
                                 alert_seconds=1.5)
    # participant 0: happy, happy, sad; participant 1: sad throughout (3 frames, 0..2 s)
    frames = [
        ([0, 1], np.stack([one_hot(HAPPY), one_hot(SAD)])),
        ([0, 1], np.stack([one_hot(HAPPY), one_hot(SAD)])),
        ([0, 1], np.stack([one_hot(SAD), one_hot(SAD)])),
    ]
    fired = []
    for t, (ids, probs) in enumerate(frames):
        engaged, new = analytics.add(float(t), ids, probs)
        fired += new
        assert np.allclose(engaged, probs @ analytics.weights)
    assert [a.participant for a in fired] == [1]  # sad from 0 to 2 s > 1.5 s
    summary = analytics.summary()
    first, second = summary["participants"]["0"], summary["participants"]["1"]
    assert first["frames_seen"] == 3 and first["dominant_emotion"] == "happy"
    assert first["mean_engagement"] == pytest.approx(2 / 3, abs=1e-4)
    assert first["stability"] == pytest.approx(2 / 3, abs=1e-4)  # one change of L1 2, T = 3
    assert second["stability"] == 0 and second["dominant_emotion"] == "sad"
    assert second["alerts"] == [{"participant": 1, "emotion": "sad", "start_s": 0.0,
                                 "end_s": 2.0, "duration_s": 2.0}]
    room = summary["room"]["over_time"]
    assert [b["time_s"] for b in room] == [0.0, 1.0, 2.0]
    assert room[0]["distribution"]["happy"] == 0.5 and room[2]["distribution"]["sad"] == 1.0
    assert summary["room"]["mean_distribution"]["sad"] == pytest.approx(4 / 6, abs=1e-4)
