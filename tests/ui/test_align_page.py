"""The align page: reached from the Agreement page, the too-few-labels message, start, progress, the results with
estimated and actual cost, "use this candidate"; viewers read but get 403 on every change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges import align, align_work
from judges.actions import create_judge
from judges.models import AlignRun, Judge
from tests.judges.test_align import POLITE, politeness  # noqa: F401 — the fixture

pytestmark = pytest.mark.django_db


def page(judge):
    return reverse("judge-align", args=[judge.experiment_id, judge.pk])


def test_the_agreement_page_links_to_align(editor_client, politeness):  # noqa: F811
    body = editor_client.get(reverse("judge-agreement", args=[politeness.experiment_id, politeness.pk])).content.decode()
    assert f'href="{page(politeness)}"' in body


def test_too_few_labels_says_how_many_more_and_offers_no_start(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="unlabelled", instructions=POLITE, endpoint=endpoint)
    body = editor_client.get(page(judge)).content.decode()
    assert "Too few labels" in body and "Label 50 more" in body
    assert 'id="align-start"' not in body


def test_start_shows_the_estimate_then_progress_then_results_and_cost(editor_client, politeness, endpoint):  # noqa: F811
    preview = editor_client.get(page(politeness), {"min_labels": 60, "rewrite_endpoint": endpoint.pk}).content.decode()
    plan = align.plan_align(politeness, min_labels=60, rewrite_endpoint=endpoint)
    assert f"{len(plan.train)} / {len(plan.held_out)}" in preview and 'id="align-start"' in preview
    estimate = f"${plan.estimate_usd:.6f}" if plan.estimate_usd < 0.01 else f"${plan.estimate_usd:.4f}"
    assert f"Start align ({estimate})" in preview

    started = editor_client.post(page(politeness), {"min_labels": 60, "rewrite_endpoint": endpoint.pk})
    aligned = AlignRun.objects.get()
    assert started.status_code == 302 and started["Location"].endswith(str(aligned.pk))
    assert aligned.min_labels == 60 and aligned.rewrite_endpoint == endpoint
    waiting = editor_client.get(started["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in waiting and "0 of" in waiting and estimate in waiting

    align_work.run(str(aligned.pk))  # the worker's task
    done = editor_client.get(started["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' not in done  # the polling stops
    aligned.refresh_from_db()
    actual = f"${aligned.cost_usd:.6f}" if aligned.cost_usd < 0.01 else f"${aligned.cost_usd:.4f}"
    assert f'<dd class="align-cost">{actual}' in done and estimate in done
    assert 'id="candidate-rewritten"' in done and "Cohen&#x27;s κ (95% interval)" in done
    assert done.count("Use this candidate</button>") == 2

    used = editor_client.post(reverse("judge-align-use", args=[politeness.experiment_id, politeness.pk, aligned.pk]), {"candidate": "rewritten"})
    assert used.status_code == 302
    assert Judge.objects.get(pk=politeness.pk).version == 1
    after = editor_client.get(used["Location"]).content.decode()
    assert "is now the shadow version" in after and reverse("judge-shadow", args=[politeness.experiment_id, politeness.pk]) in after


def test_bad_options_are_a_message_and_start_nothing(editor_client, politeness):  # noqa: F811
    body = editor_client.post(page(politeness), {"min_labels": "lots", "rewrite_endpoint": "999999"}).content.decode()
    assert "Minimum labels: a whole number from 20" in body
    assert not AlignRun.objects.exists()


def test_viewers_read_but_get_403_on_start_and_use(viewer_client, politeness, endpoint):  # noqa: F811
    assert viewer_client.get(page(politeness)).status_code == 200
    assert 'id="align-start"' not in viewer_client.get(page(politeness)).content.decode()
    assert viewer_client.post(page(politeness), {"min_labels": 50}).status_code == 403
    assert not AlignRun.objects.exists()
    aligned = align.start_align(politeness, rewrite_endpoint=endpoint)
    align_work.run(str(aligned.pk))
    assert "Use this candidate</button>" not in viewer_client.get(reverse("judge-align-run", args=[politeness.experiment_id, politeness.pk, aligned.pk])).content.decode()
    use = reverse("judge-align-use", args=[politeness.experiment_id, politeness.pk, aligned.pk])
    assert viewer_client.post(use, {"candidate": "rewritten"}).status_code == 403
    assert Judge.objects.get(pk=politeness.pk).version == 1


def test_a_run_no_worker_took_says_so_and_stops_polling(editor_client, politeness, endpoint):  # noqa: F811
    import time_machine
    from django.utils import timezone

    aligned = align.start_align(politeness, rewrite_endpoint=endpoint)
    url = reverse("judge-align-run", args=[politeness.experiment_id, politeness.pk, aligned.pk])
    assert 'hx-trigger="every 2s"' in editor_client.get(url).content.decode()
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=1)):
        later = editor_client.get(url).content.decode()
    assert "no worker took it" in later and 'hx-trigger="every 2s"' not in later
