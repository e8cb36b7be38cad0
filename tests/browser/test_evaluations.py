"""Evaluation runs in the browser: from the Evaluations tab to a run's page (a verdict's rationale on click), the
page filling itself in while judging and then stopping, and the comparison with an earlier run on the dataset —
all under the Content-Security-Policy (the `page` fixture fails on any violation)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from evaluations.models import RunStatus
from judges.models import Evaluation, EvaluationStatus
from tests.browser.conftest import screenshot
from tests.conftest import record_verdict
from tests.evaluations.conftest import PENDING, Row, build_run, dataset_with, yes_no_judge

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_open_a_run_and_compare_it_with_the_previous_one(logged_in, live_server, experiment, endpoint):
    correct = yes_no_judge(experiment, endpoint, "correct")
    dataset, records = dataset_with(experiment, "refunds", [f"question {i}" for i in range(6)])
    before = [True, True, True, False, False, True]
    after = [False, False, True, True, True, False]  # rows 0, 1, 5 regress; rows 3, 4 improve
    base = build_run(
        experiment, [correct], [Row(inputs={}, record=r, outputs=f"old {i}", verdicts={"correct": v}, rationales={"correct": f"old reason {i}"}) for i, (r, v) in enumerate(zip(records, before))],
        name="agent v1", dataset=dataset,
    )
    build_run(
        experiment, [correct], [Row(inputs={}, record=r, outputs=f"new {i}", verdicts={"correct": v}, rationales={"correct": f"new reason {i}"}) for i, (r, v) in enumerate(zip(records, after))],
        name="agent v2", dataset=dataset, gates=[("correct", "pass_rate", ">=", 0.8)],
    )
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    page.get_by_role("link", name="Evaluations").click()
    page.wait_for_url(re.compile(r"/evaluations$"))
    expect(page.locator(".runs-table tbody tr")).to_have_count(2)
    page.get_by_role("link", name="agent v2").click()
    page.wait_for_url(re.compile(r"/evaluations/[0-9a-f-]{36}$"))
    expect(page.locator("#run-verdict")).to_have_text("FAIL")
    expect(page.locator(".gates")).to_contain_text("correct pass rate 50.0% >= 80.0% n=6")

    first_verdict = page.locator("#row-0 details.verdict")
    expect(first_verdict.locator(".rationale")).to_be_hidden()
    first_verdict.locator("summary").click()
    expect(first_verdict.locator(".rationale")).to_have_text("new reason 0")
    screenshot(page, "evaluation-run")

    page.get_by_label(re.compile("Compare")).select_option(value=str(base.pk))
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(rf"/compare\?with={base.pk}"))
    expect(page.locator("#regressions .change-row")).to_have_count(3)
    expect(page.locator("#improvements .change-row")).to_have_count(2)
    expect(page.locator("#compare-correct")).to_contain_text("McNemar (exact)")
    expect(page.locator("#regressions")).to_contain_text("old reason 0")
    expect(page.locator("#regressions")).to_contain_text("new reason 0")
    screenshot(page, "evaluation-compare")
    assert page.js_errors == []


def test_a_judging_run_fills_in_and_stops_polling(logged_in, live_server, experiment, endpoint):
    correct = yes_no_judge(experiment, endpoint, "correct")
    run = build_run(
        experiment, [correct], [Row(inputs={"q": 1}, verdicts={"correct": True}), Row(inputs={"q": 2}, verdicts={"correct": PENDING})],
        status=RunStatus.JUDGING, name="busy",
    )
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/evaluations/{run.pk}")
    expect(page.locator("#row-1 .chip")).to_have_text("pending")
    expect(page.locator("#run-live")).to_have_attribute("hx-trigger", "every 3s")

    waiting = Evaluation.objects.get(job=run.pk, status=EvaluationStatus.PENDING)
    waiting.assessment = record_verdict(correct, waiting.trace, False, rationale="wrong")
    waiting.status, waiting.finished_at = EvaluationStatus.DONE, timezone.now()
    waiting.save()
    run.status, run.finished_at = RunStatus.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])

    expect(page.locator("#row-1 .chip")).to_have_text("no", timeout=10_000)
    expect(page.locator("#run-live")).not_to_have_attribute("hx-trigger", "every 3s")
    assert page.js_errors == []
