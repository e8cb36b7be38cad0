"""The evaluation runs' read API: a run with its summary, its rows paged, and a comparison — for viewers too;
bad paging or runs that cannot be compared get a 400 naming the parameter."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient
from scipy.stats import binomtest

from tests.evaluations.conftest import Row, build_run, dataset_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_runs(experiment, judges):
    dataset, records = dataset_with(experiment, "refunds", [f"q{i}" for i in range(5)])
    one = [judges["correct"]]
    base = build_run(experiment, one, [Row(inputs={}, record=r, outputs="old", verdicts={"correct": True}) for r in records], name="v1", dataset=dataset)
    new_values = [False, False, True, True, True]
    new = build_run(
        experiment,
        one,
        [Row(inputs={}, record=r, outputs="new", verdicts={"correct": v}) for r, v in zip(records, new_values)],
        name="v2",
        dataset=dataset,
        gates=[("correct", "pass_rate", ">=", 0.9)],
        params={"git_commit": "abc123"},
    )
    return base, new


def test_a_viewer_reads_a_run_with_its_summary_and_gates(viewer_api, two_runs):
    _, new = two_runs
    body = viewer_api.get(f"/api/v1/evaluation-runs/{new.pk}").json()
    assert (body["name"], body["params"], body["dataset_name"]) == ("v2", {"git_commit": "abc123"}, "refunds")
    metric = body["summary"]["judges"][0]
    assert (metric["name"], metric["n"], metric["pass_rate"]) == ("correct", 5, 0.6)
    interval = binomtest(3, 5).proportion_ci(method="wilson")
    assert metric["pass_rate_low"] == round(interval.low, 4)
    gate = body["summary"]["gates"][0]
    assert (gate["value"], gate["n"], gate["passed"], body["summary"]["passed"]) == (0.6, 5, False, False)


def test_rows_are_paged_and_filtered(viewer_api, two_runs):
    _, new = two_runs
    url = f"/api/v1/evaluation-runs/{new.pk}/rows"
    first = viewer_api.get(url, {"page_size": 2}).json()
    assert [row["position"] for row in first["rows"]] == [0, 1] and first["next_offset"] == 2 and first["total"] == 5
    assert first["rows"][0]["verdicts"]["correct"]["passed"] is False and first["rows"][0]["trace_id"]
    last = viewer_api.get(url, {"page_size": 2, "offset": 4}).json()
    assert [row["position"] for row in last["rows"]] == [4] and last["next_offset"] is None
    failed = viewer_api.get(url, {"only": "failed"}).json()
    assert [row["position"] for row in failed["rows"]] == [0, 1]


@pytest.mark.parametrize("query,field", [({"page_size": "0"}, "page_size"), ({"offset": "-1"}, "offset"), ({"only": "bogus"}, "only")])
def test_bad_paging_is_a_400_naming_the_parameter(viewer_api, two_runs, query, field):
    response = viewer_api.get(f"/api/v1/evaluation-runs/{two_runs[1].pk}/rows", query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_compare_lists_the_regressions_with_the_paired_test(viewer_api, two_runs):
    base, new = two_runs
    body = viewer_api.get(f"/api/v1/evaluation-runs/{base.pk}/compare/{new.pk}").json()
    judge = body["judges"][0]
    assert (judge["test"], judge["n_pairs"], judge["regressions"], judge["improvements"]) == ("mcnemar", 5, 2, 0)
    assert judge["p_value"] == pytest.approx(binomtest(2, 2, 0.5).pvalue)
    assert [(change["base"]["outputs"], change["new"]["outputs"], change["new"]["value"]) for change in body["regressions"]] == [
        ("old", "new", False),
        ("old", "new", False),
    ]


def test_compare_refuses_runs_of_other_datasets_and_unknown_runs(api, experiment, judges, two_runs):
    other, records = dataset_with(experiment, "other", ["x"])
    elsewhere = build_run(experiment, [judges["correct"]], [Row(inputs={}, record=records[0], verdicts={"correct": True})], dataset=other)
    refused = api.get(f"/api/v1/evaluation-runs/{two_runs[0].pk}/compare/{elsewhere.pk}")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "other_id" and "different datasets" in refused.json()["detail"]
    assert api.get(f"/api/v1/evaluation-runs/{uuid.uuid4()}").status_code == 404
    assert api.get(f"/api/v1/evaluation-runs/{two_runs[0].pk}/compare/{uuid.uuid4()}").status_code == 404


def test_reading_runs_needs_a_token(two_runs):
    assert APIClient().get(f"/api/v1/evaluation-runs/{two_runs[0].pk}").status_code == 401
