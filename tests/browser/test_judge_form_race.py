"""The New LLM judge form never replaces what was typed: a name typed just before (or while) picking a built-in
judge survives the form's refresh, however the requests and swaps interleave."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from judges.actions import create_judge  # noqa: F401 (the endpoint fixture needs the judges app loaded)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROUNDS = 20


def settled(page) -> None:
    page.wait_for_function("() => !document.querySelector('#judge-form.htmx-request, #judge-form .htmx-request')")
    page.wait_for_timeout(50)


def test_a_typed_name_survives_picking_a_builtin_judge(logged_in, live_server, experiment, endpoint):
    page = logged_in
    url = f"{live_server.url}/experiments/{experiment.pk}/judges/new"
    builtins = ["Safety", "RelevanceToQuery", "Correctness", "Guidelines"]
    for round in range(ROUNDS):
        page.goto(url)
        name = f"my judge {round}"
        if round % 2:
            # Pick the scope (a refresh goes out), type at once, then pick a built-in while that refresh may still be
            # on its way back: the earlier response must not wipe the name typed after it was sent.
            page.locator("input[name=scope][value=trace]").dispatch_event("change")
        page.fill("#id_name", name)
        page.locator(f"input[name=builtin_key][value={builtins[round % len(builtins)]}]").check()
        settled(page)
        assert page.input_value("#id_name") == name, f"round {round}: the typed name was replaced"
        assert page.locator(f"input[name=builtin_key][value={builtins[round % len(builtins)]}]").is_checked()
    assert page.js_errors == []


def test_the_forecast_updates_in_place_and_never_replaces_the_form(logged_in, live_server, experiment, endpoint):
    """The forecast asks the server on its own as the filter or sample rate is typed; its answer belongs in its own
    line, not in place of the form it sits in."""
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/new")
    forecast = page.locator("#judge-form #judge-forecast")
    expect(forecast).to_contain_text("a day")  # the only endpoint is chosen: the forecast is priced
    page.fill("#id_name", "kept")
    page.locator("#id_filter_string").press_sequentially("trace.status = 'OK'")
    expect(page.locator("#filter-check")).to_contain_text("The filter is valid.")
    page.fill("#id_sample_rate_percent", "50")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    expect(forecast).to_contain_text("a day")
    assert page.input_value("#id_name") == "kept" and page.input_value("#id_filter_string") == "trace.status = 'OK'"
    assert page.js_errors == []
