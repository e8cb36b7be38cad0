"""API tokens: made by `manage.py create_token`, stored as a hash, accepted by the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken

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
