from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import make_trace

pytestmark = pytest.mark.django_db


def test_staff_can_browse_every_model_in_the_admin(client, django_user_model, api, experiment):
    api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [make_trace("t1", session_id="s1")]}, format="json")
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    client.force_login(admin)
    for model in ["experiment", "trace", "span", "session", "assessment"]:
        response = client.get(reverse(f"admin:traces_{model}_changelist"))
        assert response.status_code == 200, model
    assert b"t1" in client.get(reverse("admin:traces_trace_changelist")).content
    assert client.get(reverse("admin:accounts_apitoken_changelist")).status_code == 200
    # Traces arrive through ingestion, never typed in by hand.
    assert client.get(reverse("admin:traces_trace_add")).status_code == 403
