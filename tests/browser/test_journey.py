"""The PM's journey from the issue, in one browser session against real worker processes: create a custom LLM
judge in the browser (live filter check, Try it), save it, log new traces through the API while the Traces tab is
open and watch the verdicts fill in, read a rationale on the trace page, and see the judge's chart on the Overview.
It also takes the screenshots the README shows (EVALAPP_SCREENSHOTS=docs/screenshots to refresh them)."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from evalapp import demo_script
from evalapp.demo_script import build_traces
from judges import selection
from judges.actions import create_judge
from judges.endpoint_actions import create_endpoint, update_endpoint
from judges.models import Evaluation, Judge
from tests.browser.conftest import post_traces, screenshot
from tests.conftest import judge_pending
from tests.e2e.test_workers import clusters, wait_for  # noqa: F401
from traces.actions import ingest_traces
from traces.models import Assessment, Trace
from traces.records import TraceIn

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PM_JUDGE = "answers_question"  # sorts first, so the trace page shows its verdict at the top
FILTER = "metadata.environment = 'production' AND trace.status = 'OK'"


def as_api_json(trace: TraceIn) -> dict[str, Any]:
    """A demo trace as the JSON API takes it."""
    spans = []
    for span in trace.spans:
        item: dict[str, Any] = {
            "span_id": span.span_id,
            "name": span.name,
            "span_type": span.span_type,
            "start_time": span.started_at.isoformat(),
            "end_time": span.ended_at.isoformat(),
            "status": span.status,
            "inputs": span.inputs,
            "outputs": span.outputs,
            "attributes": span.attributes,
        }
        if span.parent_span_id:
            item["parent_span_id"] = span.parent_span_id
        if span.status_message:
            item["status_message"] = span.status_message
        spans.append(item)
    body: dict[str, Any] = {"trace_id": trace.trace_id, "metadata": trace.metadata, "tags": trace.tags, "spans": spans}
    if trace.session_id:
        body["session_id"] = trace.session_id
    if trace.user_id:
        body["user_id"] = trace.user_id
    return body


def judge_now(ids: list[int]) -> None:
    """Judge these evaluations in this process (set-up only: what the journey itself shows is judged by the workers)."""
    if ids:
        judge_pending(ids)


def seed(experiment, endpoint) -> list[TraceIn]:
    """A week of a support agent's traffic (most of it multi-turn conversations), with two trace judges and a
    session judge that have already judged it, and a second model endpoint."""
    create_endpoint(name="GPT-4.1 mini", model="openai/gpt-4.1-mini", api_key="sk-not-a-real-key-0123456789", input_cost_per_million="0.40", output_cost_per_million="1.60")
    traces = build_traces(random.Random(11), 240, "shop-", 0)  # enough a day for the Overview to show the release
    ingest_traces(experiment, traces)
    relevance = create_judge(experiment, name="relevance_to_query", builtin_key="RelevanceToQuery", endpoint=endpoint, active=True)
    pii = create_judge(experiment, name="pii_leakage", builtin_key="PIILeakage", endpoint=endpoint, active=True)
    frustration = create_judge(
        experiment, name="user_frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint, active=True, session_idle_seconds=120
    )
    judge_now(selection.backfill_judge(relevance.pk) + selection.backfill_judge(pii.pk))
    # As the sweep will see them two minutes from now, when the conversations have gone quiet.
    judge_now(selection.select_sessions(timezone.now() + timedelta(seconds=121), judges=[frustration]))
    return traces


def fresh_form(page: Page, change) -> None:
    """Make a change that posts the judge form back (_refresh) and wait until the new form is ready for the next
    one. Swapped in is not enough: htmx binds the new form's triggers when it settles (20 ms later, while it is
    .htmx-added/.htmx-settling), and a change made before that posts nothing, so the next wait never ends."""
    page.eval_on_selector("#judge-form", "form => form.dataset.stale = '1'")
    change()
    page.wait_for_selector("#judge-form:not([data-stale]):not(.htmx-added):not(.htmx-settling)")


def test_pm_creates_a_judge_and_watches_it_judge_new_traces(logged_in, live_server, experiment, endpoint, standin, token, clusters, monkeypatch):  # noqa: F811
    update_endpoint(endpoint, timeout_seconds=60)  # calls held below wait longer than the fixture's 5 s
    worker = clusters()
    monkeypatch.setattr(demo_script, "SESSION_SHARE", 0.6)  # enough conversations to fill the Sessions tab
    seeded = seed(experiment, endpoint)
    page = logged_in
    base = f"{live_server.url}/experiments/{experiment.pk}"

    # Open the experiment, then its Judges tab.
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="checkout-agent").click()
    page.wait_for_url(f"{base}/traces")
    page.get_by_role("link", name="Judges", exact=True).click()
    page.wait_for_url(f"{base}/judges")
    page.get_by_role("link", name="+ New LLM judge").first.click()
    page.wait_for_url(f"{base}/judges/new")

    # The form: a custom yes/no judge on single traces, on the stand-in endpoint.
    expect(page.get_by_role("radio", name="Traces")).to_be_checked()
    expect(page.get_by_role("radio", name=re.compile("^Custom judge"))).to_be_checked()
    fresh_form(page, lambda: page.select_option("#id_output_type", "float"))
    expect(page.locator("#id_min_value")).to_be_visible()  # a number may have bounds
    fresh_form(page, lambda: page.select_option("#id_output_type", "boolean"))
    expect(page.locator("#id_min_value")).to_be_hidden()
    fresh_form(page, lambda: page.select_option("#id_endpoint", str(endpoint.pk)))
    expect(page.locator(".standin-note")).to_be_visible()
    page.fill("#id_name", PM_JUDGE)
    page.click("#id_instructions")
    page.keyboard.type("Does the reply ")
    page.get_by_role("button", name="{{ outputs }}").click()
    page.keyboard.type(" resolve what the customer asked in ")
    page.get_by_role("button", name="{{ inputs }}").click()
    page.keyboard.type("? Answer no if it dodges, guesses or only apologises.")
    expect(page.locator("#id_instructions")).to_have_value(
        "Does the reply {{ outputs }} resolve what the customer asked in {{ inputs }}? Answer no if it dodges, guesses or only apologises."
    )
    page.check("#id_active")
    page.fill("#id_sample_rate_percent", "100")

    # The filter is checked as it is typed: first with a typo, then fixed.
    page.locator("#id_filter_string").press_sequentially(FILTER.replace("trace.status", "trace.sttus"))
    expect(page.locator("#filter-check .error")).to_contain_text("did you mean 'trace.status'")
    page.fill("#id_filter_string", FILTER)
    matching = Trace.objects.filter(experiment=experiment, metadata__environment="production", status="OK").count()
    assert 0 < matching < len(seeded)
    expect(page.locator("#filter-check")).to_have_text(f"Matches {matching} of the {len(seeded)} traces so far.")

    # Try it: the unsaved judge, once, on the newest matching trace — called by a worker while the page polls.
    worker.wait_ready()
    page.get_by_role("button", name="Try it").click()
    verdict = page.locator("#try-result .try-verdict")
    expect(verdict.locator(".chip-pass, .chip-fail")).to_be_visible(timeout=30_000)
    expect(verdict.locator(".rationale")).to_contain_text("[stand-in model]")
    newest_matching = Trace.objects.filter(experiment=experiment, metadata__environment="production", status="OK").order_by("-started_at").first()
    expect(verdict).to_contain_text(f"on trace {newest_matching.trace_id}")
    assert not Judge.objects.filter(name=PM_JUDGE).exists(), "Try it saves nothing"
    # A taller window for this picture: from the name down to the Try it result.
    page.set_viewport_size({"width": 1400, "height": 1560})
    page.locator("label[for=id_name]").evaluate("label => { label.scrollIntoView({block: 'start'}); window.scrollBy(0, -16); }")
    screenshot(page, "judge-form")
    page.set_viewport_size({"width": 1400, "height": 900})

    # Save: back on the Judges tab, the new judge is on and its first results (the last hour's traces) come in.
    standin.config.latency_ms = 600  # slow enough to see verdicts arrive
    page.get_by_role("button", name="Create judge").click()
    page.wait_for_url(f"{base}/judges")
    expect(page.get_by_role("status")).to_contain_text(f"Created the judge {PM_JUDGE} (automatically evaluating new traces).")
    judge = Judge.objects.get(name=PM_JUDGE)
    assert (judge.active, judge.sample_rate, judge.filter_string, judge.output_type) == (True, 1.0, FILTER, "boolean")
    expect(page.locator(f"#judge-card-{judge.pk}")).to_contain_text(FILTER)

    # The Traces tab, open while new traces are logged through the API.
    page.get_by_role("link", name="Traces", exact=True).click()
    page.wait_for_url(f"{base}/traces")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    worker.wait_ready()
    # The model holds its answers until the page has shown the new traces waiting for their verdicts: however long
    # the notice's 5-second poll and the click take, every verdict is seen pending first and arriving after.
    standin.config.latency_ms = 0
    standin.hold()
    new_traces = build_traces(random.Random(7), 6, "live-", 0)  # all answered, one of them a refusal
    for trace in new_traces:
        trace.metadata["environment"] = "production"
    assert all(trace.spans[0].status == "OK" for trace in new_traces), "every new trace is one the judge's filter selects"
    now = timezone.now()
    for minutes, trace in enumerate(reversed(new_traces)):  # just now, newest first on the page
        shift = now - timedelta(seconds=20 + 30 * minutes) - trace.spans[0].started_at
        for span in trace.spans:
            span.started_at += shift
            span.ended_at += shift
    post_traces(live_server, experiment, token, [as_api_json(trace) for trace in new_traces])
    # The open page announces them (it polls while visible) and shows them on a click: an htmx swap, no reload.
    page.get_by_role("link", name=f"{len(new_traces)} new traces — show").click()
    expect(page.locator("#new-traces")).to_be_hidden()
    new_rows = Trace.objects.filter(experiment=experiment, trace_id__startswith="live-")
    cells = page.locator(", ".join(f"#verdict-{trace.pk}-{judge.pk}" for trace in new_rows))
    expect(cells).to_have_count(len(new_traces))
    expect(cells.locator(".chip-pending, .chip-running")).to_have_count(len(new_traces))
    standin.release()
    # The poller fills them in: a yes or a no in every new row's cell, no reload.
    expect(cells.locator(".chip-pass, .chip-fail")).to_have_count(len(new_traces), timeout=45_000)
    assert page.evaluate("window.__sameDocument") is True
    wait_for(lambda: not Evaluation.objects.filter(status__in=["pending", "running"]).exists(), 60, [worker], "every verdict")
    # (Each pending cell polls on its own timer; on a loaded machine the last ones take a while.)
    expect(page.locator("#trace-rows .chip-pending, #trace-rows .chip-running")).to_have_count(0, timeout=30_000)

    # A trace page: the judge's rationale.
    newest = new_rows.order_by("-started_at").first()
    page.locator(f"#trace-row-{newest.pk} td.trace-name").click()
    page.wait_for_url(f"{base}/traces/{newest.trace_id}")
    assessment = Assessment.objects.get(trace=newest, name=PM_JUDGE)
    assert assessment.rationale.startswith("[stand-in model]")
    section = page.locator("#trace-judges .judge-state", has=page.locator("strong", has_text=PM_JUDGE))
    expect(section.locator(".rationale")).to_have_text(assessment.rationale)

    # The Overview: the new judge has a chart, drawn by plotly.
    page.get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_url(f"{base}/overview")
    card = page.locator("section.chart-card", has=page.locator("h3", has_text=PM_JUDGE))
    card.scroll_into_view_if_needed()  # charts are drawn as they come into view
    chart = card.locator(".js-plotly-plot")
    expect(chart.locator("svg.main-svg").first).to_be_visible(timeout=20_000)
    expect(chart.locator(".scatterlayer .point").first).to_be_visible()  # the pass rate is plotted, not just axes
    expect(page.locator(".quality-table")).to_contain_text(PM_JUDGE)
    assert page.evaluate("window.__sameDocument") is True
    assert page.js_errors == []

    take_screenshots(page, live_server.url, experiment, endpoint, standin)
    assert page.js_errors == []


def take_screenshots(page: Page, server_url: str, experiment, endpoint, standin) -> None:
    """The README's pictures, each a fresh page load (the "Created the judge" notice has been shown by now)."""
    standin.config.latency_ms = 0
    base = f"{server_url}/experiments/{experiment.pk}"
    page.goto(f"{base}/judges")
    screenshot(page, "judges")

    page.goto(f"{base}/traces")
    expect(page.locator("#trace-rows .chip-pending, #trace-rows .chip-running")).to_have_count(0)
    screenshot(page, "traces")

    # The newest trace a judge said no to for a reason it can quote (the new judge's first): the rationale says why.
    verdicts = Assessment.objects.filter(value=False, rationale__contains="The data shows").order_by("-trace__started_at")
    shown = (verdicts.filter(name=PM_JUDGE).first() or verdicts.filter(name="relevance_to_query").first()
             or Assessment.objects.filter(name=PM_JUDGE).first()).trace
    page.goto(f"{base}/traces/{shown.trace_id}")
    expect(page.locator("#trace-judges .rationale").first).to_be_visible()
    screenshot(page, "trace")

    page.goto(f"{base}/sessions")
    expect(page.locator("#sessions-results .session-state.state-judged").first).to_be_visible()
    screenshot(page, "sessions")

    page.goto(f"{base}/overview")
    for chart in page.locator(".chart").all():  # each drawn as it comes into view; then back to the top for the picture
        chart.scroll_into_view_if_needed()
        expect(chart.locator(".js-plotly-plot")).to_have_count(1, timeout=20_000)
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "overview")

    page.goto(f"{server_url}/settings/endpoints")
    page.locator(f"#endpoint-{endpoint.pk}").get_by_role("button", name="Test connection").click()
    expect(page.locator(f"#endpoint-test-{endpoint.pk}")).to_contain_text("Connected")
    screenshot(page, "endpoints")
