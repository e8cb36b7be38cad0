"""The align() API and the client's `judge.align()`: start, poll, use; too few labels; viewers read but don't start."""

from __future__ import annotations

import pytest

from judges.models import AlignRun, Judge
from tests.api.test_response_shapes import check, openapi  # noqa: F401 — the fixture
from tests.judges.test_align import politeness  # noqa: F401 — the fixture

pytestmark = pytest.mark.django_db


def url(experiment, suffix=""):
    return f"/api/v1/experiments/{experiment.pk}/judges/polite/align{suffix}"


def test_preview_says_the_split_and_the_estimate_before_anything_runs(api, experiment, politeness):  # noqa: F811
    body = api.get(url(experiment)).json()
    plan = body["plan"]
    assert plan["problem"] is None and plan["pairs"] == 100
    assert plan["train"] + plan["held_out"] == 100 and plan["train_disagreements"] > 0
    assert plan["calls"] == plan["held_out"] * 3 + 1 and float(plan["estimate_usd"]) > 0
    assert body["runs"] == [] and not AlignRun.objects.exists()


def test_too_few_labels_is_a_400_saying_how_many_more(api, experiment, politeness):  # noqa: F811
    refused = api.post(url(experiment), {"min_labels": 150}, format="json")
    assert refused.status_code == 400
    assert "Label 50 more" in refused.json()["detail"]
    assert not AlignRun.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [({"min_labels": 3}, "min_labels"), ({"min_labels": "many"}, "min_labels"), ({"rewrite_endpoint": "nowhere"}, "rewrite_endpoint"), ({"colour": 1}, "colour")],
)
def test_bad_input_is_a_400_naming_the_field(api, experiment, politeness, body, field):  # noqa: F811
    refused = api.post(url(experiment), body, format="json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == field
    assert not AlignRun.objects.exists()


def test_viewers_may_read_but_not_start_or_use(viewer_api, experiment, politeness):  # noqa: F811
    assert viewer_api.get(url(experiment)).status_code == 200
    assert viewer_api.post(url(experiment), {}, format="json").status_code == 403
    assert not AlignRun.objects.exists()


def test_start_poll_and_use_through_the_api(api, viewer_api, openapi, experiment, politeness, endpoint):  # noqa: F811
    from judges import align_work

    started = api.post(url(experiment), {"min_labels": 50, "rewrite_endpoint": endpoint.name}, format="json")
    started_body = check(openapi, "/api/v1/experiments/{experiment_id}/judges/{name}/align", "post", started, status=202)
    assert started_body["status"] == "queued"
    run_id = started.json()["id"]
    assert started["Location"].endswith(f"/align/{run_id}")
    align_work.run(run_id)  # the worker's task
    path = "/api/v1/experiments/{experiment_id}/judges/{name}/align/{run_id}"
    body = check(openapi, path, "get", viewer_api.get(url(experiment, f"/{run_id}")))  # as documented
    assert body["status"] == "done" and [c["key"] for c in body["candidates"]] == ["current", "few_shot", "rewritten"]
    assert viewer_api.post(url(experiment, f"/{run_id}/use"), {"candidate": "rewritten"}, format="json").status_code == 403
    used = check(openapi, path + "/use", "post", api.post(url(experiment, f"/{run_id}/use"), {"candidate": "rewritten"}, format="json"))
    assert used["version"] == 2 and used["run"]["picked"] == "rewritten"
    shadow = api.get(f"/api/v1/experiments/{experiment.pk}/judges/polite/shadow").json()
    assert shadow["version"] == 2 and shadow["settings"]["instructions"] == body["candidates"][2]["instructions"]
    assert Judge.objects.get(pk=politeness.pk).version == 1
