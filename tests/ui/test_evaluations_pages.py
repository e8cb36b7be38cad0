"""The Evaluations tab, a run's page and the compare page: what editors and viewers see, empty states, paging,
polling only while judging, and query counts that do not grow with the number of runs or rows."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse
from scipy.stats import binomtest

from evaluations.models import RunStatus
from tests.evaluations.conftest import PENDING, Row, build_run, dataset_with, score_judge, yes_no_judge

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def tab_url(experiment) -> str:
    return reverse("experiment-evaluations", args=[experiment.pk])


def run_url(run, **query) -> str:
    url = reverse("evaluation-run", args=[run.experiment_id, run.pk])
    return url + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


def text(response) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", response.content.decode()))


def words(fragment: str) -> str:
    """The fragment's text as a reader sees it: no tags, one space between words."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).replace(" ,", ",").strip()


@pytest.fixture
def judges(experiment, endpoint):
    return {"correct": yes_no_judge(experiment, endpoint, "correct"), "score": score_judge(experiment, endpoint, "score")}


@pytest.fixture
def refunds(experiment):
    return dataset_with(experiment, "refunds", [f"question {i}" for i in range(30)])


@pytest.fixture
def finished(experiment, judges, refunds):
    dataset, records = refunds
    rows = [
        Row(inputs={}, record=record, outputs=f"answer {i}", verdicts={"correct": i % 3 != 0, "score": i % 5 + 1}, rationales={"correct": f"because {i}"})
        for i, record in enumerate(records[:29])
    ]
    rows.append(Row(inputs={}, record=records[29], error="TimeoutError: predict_fn took over 30 s"))
    return build_run(
        experiment,
        list(judges.values()),
        rows,
        name="agent v2",
        dataset=dataset,
        gates=[("correct", "pass_rate", ">=", 0.9), ("score", "mean", ">=", 2)],
        params={"git_commit": "abc123"},
    )


@pytest.mark.parametrize("who", ["editor_client", "viewer_client"])
def test_the_tab_lists_runs_with_intervals_n_gates_cost_and_duration(request, who, experiment, finished):
    client = request.getfixturevalue(who)
    page = text(client.get(tab_url(experiment)))
    assert 'aria-current="page">Evaluations' in page
    row = words(re.search(r'<tr id="run-' + str(finished.pk) + r'">.*?</tr>', page).group(0))
    interval = binomtest(19, 29).proportion_ci(method="wilson")
    assert f"correct 65.5% ({interval.low * 100:.1f}–{interval.high * 100:.1f}%) n=29" in row
    assert "score mean 2.93" in row and "n=29" in row
    assert "FAIL correct pass rate 65.5% >= 90.0% n=29" in row and "PASS score mean 2.93 >= 2 n=29" in row
    assert "$0.0580" in row  # 58 verdicts at $0.001
    assert "1 predict error" in row and "refunds" in row


def test_the_empty_tab_says_how_to_start_a_run(viewer_client, experiment):
    page = text(viewer_client.get(tab_url(experiment)))
    assert "No evaluation runs in this experiment yet" in page and "evalapp_client.evaluate(" in page and "predict_fn=" in page
    assert "Your account is a viewer" in page


def test_the_tab_pages_runs_in_a_fixed_number_of_queries(editor_client, experiment, judges, django_assert_max_num_queries):
    for n in range(23):
        build_run(experiment, [judges["correct"]], [Row(inputs={"q": n}, verdicts={"correct": True})], name=f"run-{n:02d}")
    with django_assert_max_num_queries(9):  # 4 of them summarize every run on the page at once
        first = text(editor_client.get(tab_url(experiment)))
    assert first.count('<tr id="run-') == 20 and ">run-22</a>" in first and ">run-02</a>" not in first
    assert "Older →" in first
    second = text(editor_client.get(tab_url(experiment) + "?page=2"))
    assert second.count('<tr id="run-') == 3 and ">run-00</a>" in second and "← Newer" in second


def test_the_tab_polls_only_while_a_run_is_judging(editor_client, experiment, judges):
    done = build_run(experiment, [judges["correct"]], [Row(inputs={"q": 1}, verdicts={"correct": True})])
    assert 'hx-trigger="every' not in editor_client.get(tab_url(experiment)).content.decode()
    build_run(experiment, [judges["correct"]], [Row(inputs={"q": 2}, verdicts={"correct": PENDING})], status=RunStatus.JUDGING, name="busy")
    page = editor_client.get(tab_url(experiment)).content.decode()
    assert 'id="runs-results" hx-get=' in page and 'hx-trigger="every 3s"' in page
    fragment = editor_client.get(tab_url(experiment), headers={**HX, "HX-Target": "runs-results"}).content.decode()
    assert "<html" not in fragment and str(done.pk) in fragment


@pytest.mark.parametrize("who", ["editor_client", "viewer_client"])
def test_the_run_page_shows_header_gates_and_rows_with_verdicts(request, who, experiment, finished, refunds, django_assert_max_num_queries):
    client = request.getfixturevalue(who)
    _, records = refunds
    records[1].expectations = {"expected_response": "edited since"}
    records[1].content_hash = "f" * 64
    records[1].save()
    with django_assert_max_num_queries(13):
        response = client.get(run_url(finished))
    page = text(response)
    assert "agent v2" in page and "refunds</a> · 30 rows" in page
    assert "Judges correct v1, score v1" in words(page) and "Params git_commit abc123" in words(page)
    assert 'id="run-verdict">FAIL' in page
    assert "FAIL correct pass rate 65.5% >= 90.0% n=29" in words(page)
    assert page.count('<tr id="row-') == 25
    first_row = re.search(r'<tr id="row-0".*?</tr>', page).group(0)
    assert "chip-fail" in first_row and "because 0" in first_row and "<details class=\"verdict\">" in first_row
    assert reverse("trace-detail", args=[experiment.pk, finished.rows.get(position=0).trace.trace_id]) in first_row
    assert "record changed since" in re.search(r'<tr id="row-1".*?</tr>', page).group(0)
    assert 'hx-trigger="every' not in page  # done: no polling
    assert "Next →" in page and "rows 1–25 of 30" in page
    second = text(client.get(run_url(finished, page=2)))
    assert second.count('<tr id="row-') == 5 and "TimeoutError: predict_fn took over 30 s" in second and "row-error" in second


def test_row_filters_and_the_live_fragment(editor_client, finished):
    failed = text(editor_client.get(run_url(finished, only="failed")))
    assert failed.count('<tr id="row-') == 10  # positions 0, 3, …, 27
    errors = text(editor_client.get(run_url(finished, only="errors")))
    assert re.findall(r'<tr id="row-(\d+)"', errors) == ["29"]
    changed = text(editor_client.get(run_url(finished, only="changed")))
    assert "No record changed since the run" in changed
    fragment = editor_client.get(run_url(finished), headers={**HX, "HX-Target": "run-live"}).content.decode()
    assert fragment.lstrip().startswith('<div id="run-live"') and "<html" not in fragment


def test_a_judging_run_page_polls_and_shows_pending_chips(editor_client, experiment, judges):
    run = build_run(
        experiment, [judges["correct"]], [Row(inputs={"q": 1}, verdicts={"correct": True}), Row(inputs={"q": 2}, verdicts={"correct": PENDING})],
        status=RunStatus.JUDGING,
    )
    page = text(editor_client.get(run_url(run)))
    assert 'id="run-live" hx-get=' in page and 'hx-trigger="every 3s"' in page
    assert "judging: 1 of 2 evaluations settled (50%)" in page and "chip-pending" in page


def test_the_compare_page_lists_regressions_and_improvements_side_by_side(editor_client, experiment, judges, refunds, finished):
    dataset, records = refunds
    # The new run flips rows 0 and 3 (fail → pass) and rows 1, 2 and 4 (pass → fail); the rest as before.
    flips = {0: True, 3: True, 1: False, 2: False, 4: False}
    rows = [
        Row(inputs={}, record=record, outputs=f"new answer {i}", verdicts={"correct": flips.get(i, i % 3 != 0), "score": i % 5 + 1}, rationales={"correct": f"new because {i}"})
        for i, record in enumerate(records[:29])
    ]
    new = build_run(experiment, list(judges.values()), rows, name="agent v3", dataset=dataset)
    run_page = text(editor_client.get(run_url(new)))
    assert f'<option value="{finished.pk}">agent v2' in run_page

    url = reverse("evaluation-compare", args=[experiment.pk, new.pk]) + f"?with={finished.pk}"
    page = text(editor_client.get(url))
    correct = re.search(r'<tr id="compare-correct">.*?</tr>', page).group(0)
    assert "McNemar (exact)" in correct and f"{binomtest(3, 5, 0.5).pvalue:.3f}" in correct
    assert ">29<" in correct.replace(" ", "")
    regressions = re.search(r'<table class="table changes-table" id="regressions">.*?</table>', page).group(0)
    assert regressions.count('class="change-row"') == 3
    assert "answer 1" in regressions and "new answer 1" in regressions and "because 1" in regressions and "new because 1" in regressions
    improvements = re.search(r'<table class="table changes-table" id="improvements">.*?</table>', page).group(0)
    assert improvements.count('class="change-row"') == 2
    assert "score" in page and "no row changed its score" in page


def test_the_compare_page_refuses_what_cannot_be_compared(editor_client, experiment, judges, finished):
    other, records = dataset_with(experiment, "other", ["x"])
    elsewhere = build_run(experiment, [judges["correct"]], [Row(inputs={}, record=records[0], verdicts={"correct": True})], dataset=other)
    url = reverse("evaluation-compare", args=[experiment.pk, finished.pk])
    refused = editor_client.get(url + f"?with={elsewhere.pk}")
    assert refused.status_code == 400 and "different datasets" in text(refused)
    assert editor_client.get(url + "?with=nonsense").status_code == 400
    assert editor_client.get(url).status_code == 200 and "No other run on this dataset" in text(editor_client.get(url))


def test_the_dataset_page_and_list_show_their_runs(editor_client, experiment, finished, refunds):
    dataset, _ = refunds
    page = text(editor_client.get(reverse("dataset-detail", args=[experiment.pk, dataset.pk])))
    section = re.search(r'<section class="dataset-runs".*?</section>', page).group(0)
    assert "agent v2" in section and "FAIL" in section and "n=29" in section
    listing = text(editor_client.get(reverse("experiment-datasets", args=[experiment.pk])))
    assert "agent v2</a>" in listing and "1 run" in listing


def test_pages_need_a_login(client, finished):
    response = client.get(run_url(finished))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_long_comparison_lists_its_first_changes_and_links_to_all(editor_client, experiment, judges, refunds, finished, monkeypatch):
    from evalapp.ui import evaluations as pages

    monkeypatch.setattr(pages, "CHANGES_SHOWN", 2)
    dataset, records = refunds
    # Every row passing: the 10 rows that failed before improve.
    new = build_run(experiment, [judges["correct"]], [Row(inputs={}, record=r, verdicts={"correct": True}) for r in records[:29]], name="v3", dataset=dataset)
    url = reverse("evaluation-compare", args=[experiment.pk, new.pk]) + f"?with={finished.pk}"
    page = text(editor_client.get(url))
    assert "Improvements (10)" in words(page)
    improvements = re.search(r'id="improvements">.*?</table>', page).group(0)
    assert improvements.count('class="change-row"') == 2 and "Show every change" in page
    everything = text(editor_client.get(url + "&all=1"))
    assert re.search(r'id="improvements">.*?</table>', everything).group(0).count('class="change-row"') == 10
    assert "Show every change" not in everything


def test_odd_page_numbers_and_filters_land_on_a_real_page(editor_client, experiment, finished):
    past_the_end = text(editor_client.get(run_url(finished, page=999)))
    assert "rows 26–30 of 30" in past_the_end
    assert "rows 1–25 of 30" in text(editor_client.get(run_url(finished, page="abc", only="bogus")))
    assert editor_client.get(tab_url(experiment) + "?page=-3").status_code == 200
    itself = editor_client.get(reverse("evaluation-compare", args=[experiment.pk, finished.pk]) + f"?with={finished.pk}")
    assert itself.status_code == 400 and "compared with itself" in text(itself)
