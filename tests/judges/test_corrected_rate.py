"""The Overview's corrected pass rate: Rogan–Gladen from the judge version's sensitivity and specificity against
people's labels, with a 95% interval (scipy.stats.bootstrap over the pairs, scipy.stats.binom for the raw rate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import parse_range
from judges.actions import create_judge
from judges.agreement import cohen_kappa, corrected_pass_rate, rogan_gladen
from tests.conftest import ingest, make_trace, record_verdict
from traces.feedback import add_feedback


def known_pairs() -> tuple[list[bool], list[bool]]:
    """50 items people said yes to (the judge passed 45: sensitivity 0.9) and 30 they said no to (the judge failed
    24: specificity 0.8)."""
    human = [True] * 50 + [False] * 30
    judge = [True] * 45 + [False] * 5 + [False] * 24 + [True] * 6
    return judge, human


def test_rogan_gladen_by_hand():
    assert rogan_gladen(0.6, 0.9, 0.8) == pytest.approx((0.6 + 0.8 - 1) / (0.9 + 0.8 - 1))
    assert rogan_gladen(0.05, 0.9, 0.8) == 0.0  # clipped: below what the judge's false passes alone would give
    assert rogan_gladen(0.6, 0.5, 0.5) is None  # no better than chance


def test_corrected_rate_on_known_sensitivity_and_specificity():
    judge, human = known_pairs()
    found = corrected_pass_rate(judge, human, passes=600, verdicts=1000)
    assert found.status == "ok" and (found.pairs, found.human_yes, found.human_no) == (80, 50, 30)
    assert (found.sensitivity, found.specificity) == pytest.approx((0.9, 0.8))
    assert found.value == pytest.approx(0.4 / 0.7)  # (0.6 + 0.8 − 1) / (0.9 + 0.8 − 1)
    assert found.low < found.value < found.high
    assert found.high - found.low < 0.3
    # More labels and more verdicts: a narrower interval around the same figure.
    more = corrected_pass_rate(judge * 4, human * 4, passes=6000, verdicts=10000)
    assert more.value == pytest.approx(found.value) and more.high - more.low < found.high - found.low


@pytest.mark.parametrize(
    "judge, human, status",
    [
        ([True] * 19, [True] * 19, "not_enough_labels"),  # fewer than 20 pairs
        ([True] * 25 + [False] * 5, [True] * 30, "not_enough_labels"),  # people never said no
        ([True, False] * 20, [True, True, False, False] * 10, "not_correctable"),  # a coin: sensitivity + specificity = 1
    ],
)
def test_no_correction_without_enough_labels_or_a_judge_better_than_chance(judge, human, status):
    found = corrected_pass_rate(judge, human, passes=50, verdicts=100)
    assert found.status == status and found.value is None and found.low is None


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_overview_shows_the_corrected_rate_beside_the_raw_one(experiment, endpoint, user, editor_client):
    """Labelled traces with the known pairs' sensitivity and specificity, plus unlabelled verdicts: the Overview's
    raw rate is over every verdict in the range, the correction from the labelled ones."""
    judge = create_judge(experiment, name="safe", instructions="Is {{ outputs }} safe?", endpoint=endpoint)
    verdicts, labels = known_pairs()
    verdicts += [True] * 40 + [False] * 80  # unlabelled: 85 of 200 pass in all
    stored = ingest(experiment, *(make_trace(f"t{n:03d}", minutes=n) for n in range(len(verdicts))))
    for index, trace in enumerate(stored):
        record_verdict(judge, trace, verdicts[index])
        if index < len(labels):
            add_feedback(user=user, name="safe", value=labels[index], trace=trace)
    with time_machine.travel(NOW + timedelta(hours=5), tick=False):
        summary = compute_overview(experiment, parse_range({"range": "30d"}, NOW + timedelta(hours=5)))["judges"][0]
        page = editor_client.get(f"/experiments/{experiment.pk}/overview?range=30d").content.decode()
    raw = sum(verdicts) / len(verdicts)
    assert (summary["pass_rate"], summary["n"]) == (pytest.approx(raw, abs=1e-4), 200)
    corrected = summary["corrected"]
    assert corrected["status"] == "ok" and corrected["pairs"] == 80 and corrected["version"] == 1
    assert corrected["pass_rate"] == pytest.approx(rogan_gladen(raw, 0.9, 0.8), abs=1e-4)
    assert corrected["low"] < corrected["pass_rate"] < corrected["high"]
    assert f"corrected {corrected['pass_rate'] * 100:.1f}%" in page and "80 labelled pairs of v1" in page
    # Beside it, the version's agreement with people: the judge card's κ, with its interval and n.
    expected = cohen_kappa(verdicts[: len(labels)], labels)
    agreement = summary["agreement"]
    assert (agreement["status"], agreement["figure"], agreement["n"], agreement["version"]) == ("ok", "kappa", 80, 1)
    assert agreement["value"]["value"] == pytest.approx(expected, abs=1e-4)
    assert agreement["value"]["low"] < agreement["value"]["value"] < agreement["value"]["high"]
    value = agreement["value"]
    assert f"κ {value['value']:.2f} ({value['low']:.2f}–{value['high']:.2f}), n = 80 (v1)" in page


@pytest.mark.django_db
def test_the_overview_says_not_enough_labels(experiment, endpoint, user, editor_client):
    judge = create_judge(experiment, name="safe", instructions="Is {{ outputs }} safe?", endpoint=endpoint)
    for index, trace in enumerate(ingest(experiment, *(make_trace(f"t{n}", minutes=n) for n in range(12)))):
        record_verdict(judge, trace, index % 2 == 0)
        add_feedback(user=user, name="safe", value=True, trace=trace)
    with time_machine.travel(NOW + timedelta(hours=5), tick=False):
        summary = compute_overview(experiment, parse_range({"range": "30d"}, NOW + timedelta(hours=5)))["judges"][0]
        page = editor_client.get(f"/experiments/{experiment.pk}/overview?range=30d").content.decode()
    assert summary["corrected"]["status"] == "not_enough_labels" and summary["corrected"]["pass_rate"] is None
    assert "corrected: not enough labels (12 labelled pairs of v1; needs 20)" in page
    assert summary["agreement"] == {"version": 1, "n": 12, "status": "insufficient", "min_pairs": 20, "figure": "kappa", "value": None}
    assert "insufficient (12 of 20 labels)" in page
