"""GET /api/v1/experiments/{id}/judges/{name}/agreement and the client's `judge.agreement()`."""

from __future__ import annotations

import pytest

from judges.actions import create_judge
from tests.conftest import ingest, make_trace, record_verdict
from traces.feedback import add_feedback

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(experiment, endpoint, user):
    """24 traces judged yes except the first three; people said no to the first six (three disagreements)."""
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    for index, trace in enumerate(ingest(experiment, *(make_trace(f"t{n:02d}", minutes=n) for n in range(24)))):
        record_verdict(judge, trace, index >= 3, rationale=f"verdict {index}")
        add_feedback(user=user, name="helpful", value=index >= 6, trace=trace, rationale=f"label {index}")
    return judge


def url(experiment, name="helpful", query=""):
    return f"/api/v1/experiments/{experiment.pk}/judges/{name}/agreement{query}"


def test_agreement_with_intervals_and_the_disagreements(api, experiment, labelled):
    body = api.get(url(experiment)).json()
    [current] = body["versions"]
    assert (current["version"], current["n"], current["status"]) == (1, 24, "ok")
    assert current["accuracy"]["value"] == pytest.approx(21 / 24, abs=1e-4)
    assert current["kappa"]["low"] < current["kappa"]["value"] < current["kappa"]["high"]
    assert current["confusion"] == {"labels": [True, False], "rows": [[18, 3], [0, 3]]}
    disagreements = body["disagreements"]
    assert disagreements["total"] == 3
    assert [(d["trace_id"], d["judge_value"], d["human_value"]) for d in disagreements["results"]] == [
        ("t03", True, False), ("t04", True, False), ("t05", True, False),
    ]
    assert disagreements["results"][0]["url"] == f"/experiments/{experiment.pk}/traces/t03"
    assert disagreements["results"][0]["rationale"] == "verdict 3"
    assert body["inter_annotator"]["status"] == "insufficient"


def test_fewer_than_twenty_pairs_is_insufficient(api, experiment, endpoint, user):
    judge = create_judge(experiment, name="few", instructions="Is {{ outputs }} ok?", endpoint=endpoint)
    for trace in ingest(experiment, *(make_trace(f"f{n}", minutes=n) for n in range(19))):
        record_verdict(judge, trace, True)
        add_feedback(user=user, name="few", value=True, trace=trace)
    [current] = api.get(url(experiment, "few")).json()["versions"]
    assert (current["n"], current["status"], current["kappa"], current["accuracy"]) == (19, "insufficient", None, None)


def test_bad_version_or_page_is_a_400_and_unknown_judge_a_404(api, experiment, labelled):
    bad = api.get(url(experiment, query="?version=7&page=0"))
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"version", "page"}
    assert api.get(url(experiment, "nobody")).status_code == 404


def test_a_viewer_may_read_it(viewer_api, experiment, labelled):
    assert viewer_api.get(url(experiment)).status_code == 200
