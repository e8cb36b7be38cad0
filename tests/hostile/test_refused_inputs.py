"""Inputs that must be refused with a 4xx naming the limit, leaving nothing half-written."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges.actions import MAX_INSTRUCTIONS_CHARS
from judges.models import Judge, ModelEndpoint

pytestmark = pytest.mark.django_db


def judge_body(endpoint, **fields):
    return {"name": "helpful", "instructions": "Is {{ outputs }} helpful?", "endpoint": endpoint.pk, **fields}


def post_judge(api, experiment, body):
    return api.post(f"/api/v1/experiments/{experiment.pk}/judges", body, format="json")


def test_instructions_past_the_limit_are_refused_with_the_limit(api, experiment, endpoint):
    huge = "Is {{ outputs }} helpful? " + "x" * (10 * 1024 * 1024)
    response = post_judge(api, experiment, judge_body(endpoint, instructions=huge))
    assert response.status_code == 400
    assert f"the limit is {MAX_INSTRUCTIONS_CHARS:,}" in response.json()["detail"]
    assert not Judge.objects.exists()


@pytest.mark.parametrize("field", ["name", "instructions", "filter_string"])
def test_an_object_where_text_belongs_is_refused_not_stringified(api, experiment, endpoint, field):
    response = post_judge(api, experiment, judge_body(endpoint, **{field: {"text": "Is {{ outputs }} helpful?"}}))
    assert response.status_code == 400
    assert {"field": field, "message": "must be text, not a JSON object"} in response.json()["errors"]
    assert not Judge.objects.exists()


def test_an_endpoint_model_given_as_a_list_is_refused(api, db):
    response = api.post("/api/v1/endpoints", {"name": "x", "model": ["openai/gpt-4.1-mini"]}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["message"] == "must be text, not a JSON list"
    assert not ModelEndpoint.objects.exists()


def test_a_spend_cap_of_minus_zero_is_refused(api, experiment, endpoint):
    response = post_judge(api, experiment, judge_body(endpoint, daily_cost_cap_usd="-0"))
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "daily_cost_cap_usd"


@pytest.mark.parametrize("moment", ["2100-01-01T00:00:00Z", "2100-06-01T00:00:00Z"])
def test_times_in_the_year_2100_are_refused(api, experiment, moment):
    trace = {"trace_id": "t-2100", "spans": [{"span_id": "root", "name": "agent", "start_time": moment, "end_time": moment}]}
    response = api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [trace]}, format="json")
    assert response.status_code == 400 and "1970–2099" in response.json()["detail"]
    search = api.get(f"/api/v1/experiments/{experiment.pk}/traces", {"since": moment})
    assert search.status_code == 400


def test_the_overview_range_may_end_on_the_last_day_evalapp_stores(client, user, experiment):
    client.force_login(user)
    page = client.get(reverse("experiment-overview", args=[experiment.pk]), {"from": "2099-12-01", "to": "2099-12-31"})
    assert page.status_code == 200 and "outside the years" not in page.content.decode()


def test_a_viewer_refused_an_editors_page_sees_the_app_saying_which_role(client, viewer, experiment):
    client.force_login(viewer)
    response = client.get(reverse("judge-new", args=[experiment.pk]))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="topbar"' in html and "editors" in html and "viewer" in html
