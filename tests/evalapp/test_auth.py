from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client, experiment):
    for url in ["/", f"/experiments/{experiment.pk}/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_api_needs_a_token_or_a_login(client, user, experiment):
    assert client.get("/api/v1/experiments").status_code in (401, 403)
    client.force_login(user)
    assert client.get("/api/v1/experiments").status_code == 200


def test_login_then_see_experiments_and_traces(client, user, api, experiment):
    from tests.conftest import make_trace

    api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [make_trace("t1")]}, format="json")
    response = client.post("/login/", {"username": "pat", "password": "pat-password-123"})
    assert response.status_code == 302
    listing = client.get("/")
    assert b"checkout-agent" in listing.content
    detail = client.get(f"/experiments/{experiment.pk}/", follow=True)  # opens on the Traces tab
    assert b"question t1" in detail.content


def test_healthz_needs_no_login_and_says_what_it_checked(client, db):
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update(next_run=timezone.now())  # as just after migrate (in a long test run it came due long ago)
    body = client.get("/healthz").json()
    assert (body["status"], body["database"], body["sweep"]["ok"]) == ("ok", "ok", True)
