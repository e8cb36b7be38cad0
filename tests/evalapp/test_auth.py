from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from evalapp.models import ApiToken

pytestmark = pytest.mark.django_db


def test_create_token_command_prints_a_working_token_and_stores_only_its_hash(user, experiment):
    out = StringIO()
    call_command("create_token", "pat", "--name", "ci", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("ea_")

    stored = ApiToken.objects.get(name="ci")
    assert raw not in (stored.token_hash, stored.prefix)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/experiments").status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_create_token_for_unknown_user_explains_what_to_do(db):
    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_token", "nobody")
    out = StringIO()
    call_command("create_token", "robot", "--create-user", stdout=out)
    assert ApiToken.objects.get().user.username == "robot"


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


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
