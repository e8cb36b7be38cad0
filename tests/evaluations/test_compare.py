"""evaluations.results.compare: two runs on one dataset joined row by row by record id (inputs' key for inline
records), a paired test per judge with scipy's p-value, and exactly the rows that regressed or improved."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest, wilcoxon

from evaluations.results import CompareError, compare
from tests.evaluations.conftest import Row, build_run, dataset_with

pytestmark = pytest.mark.django_db

QUESTIONS = [f"question {i}" for i in range(12)]
BASE_CORRECT = [True, True, True, False, False, True, True, True, False, True, True, True]
# Rows 0, 1 and 5 go pass → fail; rows 3 and 4 go fail → pass.
NEW_CORRECT = [False, False, True, True, True, False, True, True, False, True, True, True]
BASE_SCORE = [4, 4, 5, 2, 3, 4, 3, 5, 1, 4, 4, 2]
NEW_SCORE = [2, 3, 5, 4, 5, 1, 3, 5, 1, 4, 4, 2]


def runs_on(experiment, judges, *, new_order=None):
    dataset, records = dataset_with(experiment, "refunds", QUESTIONS)
    both = [judges["correct"], judges["score"]]

    def rows(correct, scores, tag):
        return [
            Row(
                inputs={},
                record=records[i],
                outputs=f"{tag} answer {i}",
                verdicts={"correct": correct[i], "score": scores[i]},
                rationales={"correct": f"{tag} rationale {i}", "score": f"{tag} score rationale {i}"},
            )
            for i in range(len(QUESTIONS))
        ]

    base = build_run(experiment, both, rows(BASE_CORRECT, BASE_SCORE, "base"), name="v1", dataset=dataset)
    new_rows = rows(NEW_CORRECT, NEW_SCORE, "new")
    if new_order:  # another order of the same records: the join is by record, not by position
        new_rows = [new_rows[i] for i in new_order]
    new = build_run(experiment, both, new_rows, name="v2", dataset=dataset)
    return base, new


def test_compare_lists_exactly_the_regressions_and_improvements_with_scipys_p_values(experiment, judges):
    base, new = runs_on(experiment, judges, new_order=list(reversed(range(12))))

    comparison = compare(base, new)

    correct = next(change for change in comparison.judges if change.name == "correct")
    assert (correct.test, correct.n_pairs, correct.regressions, correct.improvements) == ("mcnemar", 12, 3, 2)
    assert correct.p_value == pytest.approx(binomtest(3, 5, 0.5).pvalue)
    assert correct.base_value == round(sum(BASE_CORRECT) / 12, 4) and correct.new_value == round(sum(NEW_CORRECT) / 12, 4)
    score = next(change for change in comparison.judges if change.name == "score")
    assert (score.test, score.n_pairs) == ("wilcoxon", 12)
    assert score.p_value == pytest.approx(wilcoxon(NEW_SCORE, BASE_SCORE).pvalue)

    yes_no_regressions = [change for change in comparison.regressions if change.judge_name == "correct"]
    assert sorted(change.inputs["question"] for change in yes_no_regressions) == ["question 0", "question 1", "question 5"]
    assert all(change.kind == "pass → fail" for change in yes_no_regressions)
    improvements = [change for change in comparison.improvements if change.judge_name == "correct"]
    assert sorted(change.inputs["question"] for change in improvements) == ["question 3", "question 4"]
    row_zero = next(change for change in yes_no_regressions if change.inputs["question"] == "question 0")
    assert (row_zero.base.outputs, row_zero.base.rationale, row_zero.base.value) == ("base answer 0", "base rationale 0", True)
    assert (row_zero.new.outputs, row_zero.new.rationale, row_zero.new.value) == ("new answer 0", "new rationale 0", False)
    drops = sorted(change.inputs["question"] for change in comparison.regressions if change.judge_name == "score")
    assert drops == ["question 0", "question 1", "question 5"]
    assert {change.delta for change in comparison.regressions if change.judge_name == "score"} == {-2, -1, -3}
    assert comparison.matched == 12 and comparison.only_base == comparison.only_new == 0


def test_inline_records_join_by_their_inputs_not_their_position(experiment, judges):
    one = [judges["correct"]]
    base = build_run(experiment, one, [Row(inputs={"q": "a"}, verdicts={"correct": True}), Row(inputs={"q": "b"}, verdicts={"correct": True})], name="x")
    new = build_run(
        experiment, one, [Row(inputs={"q": "c"}, verdicts={"correct": False}), Row(inputs={"q": "b"}, verdicts={"correct": False})], name="y"
    )
    comparison = compare(base, new)
    assert (comparison.matched, comparison.only_base, comparison.only_new) == (1, 1, 1)
    assert [change.inputs for change in comparison.regressions] == [{"q": "b"}]
    assert comparison.judges[0].p_value == pytest.approx(binomtest(1, 1, 0.5).pvalue)


def test_runs_on_different_datasets_are_refused(experiment, judges):
    first, records_a = dataset_with(experiment, "a", ["x"])
    second, records_b = dataset_with(experiment, "b", ["x"])
    base = build_run(experiment, [judges["correct"]], [Row(inputs={}, record=records_a[0], verdicts={"correct": True})], dataset=first)
    new = build_run(experiment, [judges["correct"]], [Row(inputs={}, record=records_b[0], verdicts={"correct": True})], dataset=second)
    with pytest.raises(CompareError, match="different datasets"):
        compare(base, new)


def test_no_change_has_no_p_value_and_lists_nothing(experiment, judges):
    base, _ = runs_on(experiment, judges)
    same = build_run(
        experiment,
        [judges["correct"], judges["score"]],
        [Row(inputs={}, record=row.record, verdicts={"correct": BASE_CORRECT[row.position], "score": BASE_SCORE[row.position]}) for row in base.rows.all()],
        dataset=base.dataset,
        name="same",
    )
    comparison = compare(base, same)
    assert comparison.regressions == [] and comparison.improvements == []
    assert all(change.p_value is None and change.note for change in comparison.judges)


def test_compare_takes_a_fixed_number_of_queries(experiment, judges, django_assert_max_num_queries):
    base, new = runs_on(experiment, judges)
    with django_assert_max_num_queries(6):
        comparison = compare(base, new)
    assert len(comparison.regressions) == 6


def test_rows_that_raised_in_one_run_are_counted_apart(experiment, judges):
    dataset, records = dataset_with(experiment, "refunds", ["a", "b"])
    one = [judges["correct"]]
    base = build_run(experiment, one, [Row(inputs={}, record=r, verdicts={"correct": True}) for r in records], name="x", dataset=dataset)
    new = build_run(
        experiment, one, [Row(inputs={}, record=records[0], verdicts={"correct": True}), Row(inputs={}, record=records[1], error="KeyError: 'q'")], name="y", dataset=dataset
    )
    comparison = compare(base, new)
    assert comparison.judges[0].n_pairs == 1 and comparison.regressions == []
    assert any("1 row(s) raised in the new run's predict function" in note for note in comparison.notes)
