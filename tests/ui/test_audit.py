"""The audit log: who switched a judge on or off, edited or deleted it, or changed a model endpoint, and what changed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges.actions import create_judge, delete_judge, update_judge
from judges.endpoint_actions import update_endpoint
from judges.models import AuditEvent
from tests.conftest import STANDIN_KEY

pytestmark = pytest.mark.django_db


def test_every_change_is_recorded_with_who_and_what_and_never_a_key(client, user, viewer, experiment, endpoint):
    judge = create_judge(experiment, user=user, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    update_judge(judge, user=user, active=True)
    update_judge(judge, user=user, instructions="Is {{ outputs }} a helpful answer?")
    update_endpoint(endpoint, user=user, timeout_seconds=9, api_key="sk-a-brand-new-secret-9999")
    delete_judge(judge, user=user)
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "subject")) == [
        ("created", "model endpoint Stand-in (test)"),  # the fixture's, by code (no user)
        ("created", "judge helpful"), ("switched on", "judge helpful"), ("edited", "judge helpful"),
        ("edited", "model endpoint Stand-in (test)"), ("deleted", "judge helpful"),
    ]
    edit = AuditEvent.objects.get(action="edited", subject="judge helpful")
    assert edit.changes["instructions"] == ["Is {{ outputs }} helpful?", "Is {{ outputs }} a helpful answer?"]
    assert edit.changes["version"] == [1, 2]
    client.force_login(viewer)  # viewers may read the log
    page = client.get(reverse("judges-audit", args=[experiment.pk])).content.decode()
    assert page.count("<tr>") == 7 and "switched on judge helpful" in page and "<td>pat</td>" in page
    assert "timeout_seconds</code>: 5 → 9" in page and "api_key</code>: (hidden) → (changed)" in page
    assert "sk-a-brand-new-secret-9999" not in page and STANDIN_KEY not in page
    assert "sk-a-brand-new" not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_the_log_is_paged_newest_first(client, user, experiment, endpoint):
    judge = create_judge(experiment, user=user, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    for number in range(60):
        update_judge(judge, user=user, sample_rate=round(0.01 * (number + 1), 2))
    client.force_login(user)
    first = client.get(reverse("judges-audit", args=[experiment.pk])).content.decode()
    assert first.count("<tr>") == 51  # a header and 50 rows and "0.6 → " not in first and "0.59 → 0.6" in first and "Older changes" in first
    older = reverse("judges-audit", args=[experiment.pk]) + first.split(reverse("judges-audit", args=[experiment.pk]))[1].split('"')[0]
    second = client.get(older).content.decode()
    assert "created judge helpful" in second and "0.59 → 0.6" not in second
