"""judges.agreement: κ, accuracy, MAE, Spearman and their bootstrap intervals from pairs (no database)."""

from __future__ import annotations

import random

import pytest
from scipy.stats import spearmanr

from judges.agreement import MIN_PAIRS, cohen_kappa, measure, more_for_half_width, wilson_interval

# 20 pairs: judge yes & person yes 8, judge yes & person no 2, judge no & person yes 3, judge no & person no 7.
JUDGE = [True] * 10 + [False] * 10
HUMAN = [True] * 8 + [False] * 2 + [True] * 3 + [False] * 7


def test_kappa_matches_the_hand_computation_on_a_fixed_set():
    # observed agreement (8 + 7) / 20 = 0.75; chance: judge yes 10/20, person yes 11/20 →
    # 0.5·0.55 + 0.5·0.45 = 0.5; κ = (0.75 − 0.5) / (1 − 0.5) = 0.5
    assert cohen_kappa(JUDGE, HUMAN) == pytest.approx(0.5)
    agreement = measure("boolean", JUDGE, HUMAN, labels=[True, False])
    assert agreement.kappa.value == pytest.approx(0.5)
    assert agreement.accuracy.value == pytest.approx(0.75)
    assert agreement.confusion == [[8, 2], [3, 7]]
    assert agreement.kappa.low < 0.5 < agreement.kappa.high


def test_quadratic_weighted_kappa_matches_the_hand_computation():
    # observed weighted disagreement (1² + 1²) / 4 = 0.5; expected 1.625 (marginals .5/.25/.25 and .25/.25/.5)
    assert cohen_kappa([1, 1, 2, 3], [1, 2, 3, 3], labels=[1, 2, 3], weights="quadratic") == pytest.approx(1 - 0.5 / 1.625)


def test_categories_use_plain_kappa_and_the_judges_order():
    judge = ["none", "resolved", "unresolved", "none"] * 6
    human = ["none", "resolved", "resolved", "none"] * 6
    agreement = measure("categorical", judge, human, labels=["none", "resolved", "unresolved"])
    assert agreement.kappa_weights is None
    assert agreement.labels == ["none", "resolved", "unresolved"]
    assert agreement.confusion == [[12, 0, 0], [0, 6, 0], [0, 6, 0]]
    assert agreement.kappa.value == pytest.approx(cohen_kappa(judge, human))


def test_fewer_than_twenty_pairs_is_insufficient_not_a_number():
    agreement = measure("boolean", JUDGE[: MIN_PAIRS - 1], HUMAN[: MIN_PAIRS - 1])
    assert not agreement.sufficient
    assert agreement.kappa is None and agreement.accuracy is None
    assert agreement.as_json()["status"] == "insufficient"
    assert agreement.needed == 1
    assert more_for_half_width(agreement) is None


def test_a_judge_that_flips_ten_percent_measures_about_ninety_percent():
    rng = random.Random(7)
    truth = [rng.random() < 0.5 for _ in range(400)]
    flipped = set(rng.sample(range(400), 40))  # exactly 10% flipped
    judge = [(not value) if index in flipped else value for index, value in enumerate(truth)]
    agreement = measure("boolean", judge, truth)
    assert agreement.accuracy.value == pytest.approx(0.9)
    assert agreement.accuracy.low < 0.9 < agreement.accuracy.high
    assert agreement.accuracy.high - agreement.accuracy.low < 0.08


def test_numbers_get_mae_spearman_and_weighted_kappa():
    rng = random.Random(3)
    human = [rng.randint(1, 5) for _ in range(60)]
    judge = [min(5, max(1, value + rng.choice([-1, 0, 0, 1]))) for value in human]
    agreement = measure("integer", judge, human, labels=[1, 2, 3, 4, 5])
    assert agreement.kappa_weights == "quadratic"
    assert agreement.mae.value == pytest.approx(sum(abs(a - b) for a, b in zip(judge, human, strict=True)) / 60)
    assert agreement.spearman.value == pytest.approx(spearmanr(judge, human).statistic)
    assert agreement.spearman.low < agreement.spearman.value < agreement.spearman.high
    decimals = measure("float", [v / 5 for v in judge], [v / 5 for v in human])
    assert decimals.kappa is None and decimals.mae.value == pytest.approx(agreement.mae.value / 5)


def test_same_pairs_same_interval():
    first = measure("boolean", JUDGE * 3, HUMAN * 3)
    again = measure("boolean", JUDGE * 3, HUMAN * 3)
    assert (first.kappa.low, first.kappa.high) == (again.kappa.low, again.kappa.high)


def test_more_labels_projection_shrinks_with_n():
    few = measure("boolean", JUDGE * 2, HUMAN * 2)
    many = measure("boolean", JUDGE * 10, HUMAN * 10)
    assert more_for_half_width(few) > more_for_half_width(many) >= 0


def test_wilson_interval_gives_scipys_figures():
    from scipy.stats import binomtest

    for n in [*range(1, 41), 97, 1000, 123_457]:
        for passes in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            expected = binomtest(passes, n).proportion_ci(confidence_level=0.95, method="wilson")
            assert wilson_interval(passes, n) == pytest.approx((expected.low, expected.high), abs=1e-12), (passes, n)
    assert wilson_interval(0, 0) is None


def test_no_pairs_measure_the_same_as_before_without_a_computation():
    agreement = measure("categorical", [], [], labels=["good", "bad"])
    assert (agreement.n, agreement.sufficient, agreement.labels, agreement.confusion) == (0, False, ["good", "bad"], [])
    assert agreement.as_json()["confusion"] == {"labels": ["good", "bad"], "rows": []}
    assert measure("float", [], []).as_json()["confusion"] is None
