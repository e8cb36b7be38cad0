"""evaluations.results: a run's per-judge metrics with their intervals and n, its gates, its progress and its
rows' verdicts, computed from the run's job of evaluations."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest, ttest_1samp

from evaluations.models import RunStatus
from evaluations.results import row_results, summarize, summarize_many
from tests.evaluations.conftest import PENDING, RUNNING, Row, build_run, dataset_with

pytestmark = pytest.mark.django_db


def test_summary_counts_pass_rate_mean_errors_and_pending_with_scipy_intervals(experiment, judges):
    correct = [True, True, False, True, ("error", "timeout"), ("not_applicable",), True, False, PENDING, RUNNING]
    scores = [5, 4, 2, 5, 3, 1, 4, 2, 5, ("error", "invalid_answer")]
    rows = [Row(inputs={"q": i}, outputs=f"a{i}", verdicts={"correct": correct[i], "score": scores[i]}) for i in range(10)]
    rows.append(Row(inputs={"q": "broken"}, error="ValueError: predict failed"))
    run = build_run(experiment, list(judges.values()), rows, status=RunStatus.JUDGING)

    summary = summarize(run)

    yes_no, score = summary.judges
    assert (yes_no.name, yes_no.n, yes_no.passes, yes_no.errors, yes_no.not_applicable, yes_no.pending) == ("correct", 6, 4, 1, 1, 2)
    assert yes_no.pass_rate == round(4 / 6, 4)
    interval = binomtest(4, 6).proportion_ci(confidence_level=0.95, method="wilson")
    assert (yes_no.pass_rate_low, yes_no.pass_rate_high) == (round(interval.low, 4), round(interval.high, 4))
    numbers = [5, 4, 2, 5, 3, 1, 4, 2, 5]
    assert (score.n, score.errors, score.pending) == (9, 1, 0)
    assert score.mean == round(sum(numbers) / 9, 4)
    t = ttest_1samp(numbers, 0).confidence_interval(0.95)
    assert (score.mean_low, score.mean_high) == (round(t.low, 4), round(t.high, 4))
    assert yes_no.cost_usd == pytest.approx(0.001 * 4 + 0.001 * 2)  # judged verdicts carry a cost; errors none
    assert (summary.done, summary.total, summary.row_errors) == (18, 20, 1)
    assert summary.judging


def test_gates_pass_fail_and_a_gate_without_verdicts_fails(experiment, judges):
    rows = [Row(inputs={"q": i}, verdicts={"correct": i < 8, "score": 4}) for i in range(10)]
    run = build_run(
        experiment,
        [judges["correct"], judges["score"]],
        rows,
        gates=[("correct", "pass_rate", ">=", 0.75), ("score", "mean", ">=", 4.5), ("missing", "pass_rate", ">=", 0.5)],
    )
    summary = summarize(run)
    outcomes = {gate.judge_name: gate for gate in summary.gates}
    assert (outcomes["correct"].passed, outcomes["correct"].value, outcomes["correct"].n) == (True, 0.8, 10)
    assert (outcomes["score"].passed, outcomes["score"].value) == (False, 4.0)
    assert not outcomes["missing"].passed and outcomes["missing"].reason
    assert summary.passed is False
    assert not summary.judging


def test_a_pass_rate_gate_on_a_run_without_verdicts_fails(experiment, judges):
    run = build_run(experiment, [judges["correct"]], [Row(inputs={"q": 1}, error="boom")], gates=[("correct", "pass_rate", ">=", 0.5)])
    summary = summarize(run)
    assert summary.gates[0].passed is False and summary.gates[0].n == 0
    assert summary.passed is False


def test_summaries_take_a_fixed_number_of_queries_whatever_the_size(experiment, judges, django_assert_max_num_queries):
    small = build_run(experiment, list(judges.values()), [Row(inputs={"q": i}, verdicts={"correct": True, "score": 3}) for i in range(3)], name="small")
    large = build_run(
        experiment, list(judges.values()), [Row(inputs={"q": i}, verdicts={"correct": i % 2 == 0, "score": i % 5 + 1}) for i in range(40)], name="large"
    )
    with django_assert_max_num_queries(4):
        summaries = summarize_many([small, large])
    assert summaries[large.pk].judge("correct").n == 40
    assert summaries[small.pk].judge("score").mean == 3


def test_row_results_give_each_rows_verdicts_trace_and_record_change(experiment, judges, django_assert_max_num_queries):
    dataset, records = dataset_with(experiment, "refunds", ["a", "b", "c"])
    rows = [
        Row(inputs={}, record=records[0], outputs="A", verdicts={"correct": True, "score": 5}, rationales={"correct": "says 30 days"}),
        Row(inputs={}, record=records[1], outputs="B", verdicts={"correct": False, "score": PENDING}),
        Row(inputs={}, record=records[2], error="TimeoutError: predict took over 30 s"),
    ]
    run = build_run(experiment, list(judges.values()), rows, dataset=dataset)
    records[1].expectations = {"expected_response": "edited"}
    records[1].content_hash = "0" * 64
    records[1].save()

    with django_assert_max_num_queries(3):
        page = row_results(run, limit=2)
    assert page.total == 3 and page.has_next
    first, second = page.rows
    assert [(v.judge_name, v.state, v.value, v.passed) for v in first.verdicts] == [("correct", "judged", True, True), ("score", "judged", 5, None)]
    assert first.verdicts[0].rationale == "says 30 days"
    assert first.trace_ref and first.record_change == ""
    assert [v.state for v in second.verdicts] == ["judged", "pending"] and second.failed
    assert second.record_change == "changed"
    third = row_results(run, offset=2, limit=2).rows[0]
    assert third.row.error.startswith("TimeoutError") and third.has_error and third.trace_ref is None
    assert [r.row.position for r in row_results(run, only="failed").rows] == [1]
    assert [r.row.position for r in row_results(run, only="errors").rows] == [2]
    assert [r.row.position for r in row_results(run, only="changed").rows] == [1]
