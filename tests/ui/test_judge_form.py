"""The New / Edit LLM judge form: scope → judge → name → instructions → output → model → evaluation settings,
errors next to their fields with nothing lost, the live filter check, "Try it" on the unsaved judge, delete."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from judges import try_runs
from judges.actions import create_judge
from judges.models import Evaluation, Judge, JudgeVersion, TryRun
from tests.conftest import ingest, links_static, make_trace
from traces.models import Assessment

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
HX_FORM = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "judge-form"}
HX_TAB = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "experiment-page"}


def new_url(experiment) -> str:
    return reverse("judge-new", args=[experiment.pk])


def edit_url(judge) -> str:
    return reverse("judge-edit", args=[judge.experiment_id, judge.pk])


def tab_url(experiment) -> str:
    return reverse("experiment-judges", args=[experiment.pk])


def form_data(endpoint, /, **overrides) -> dict[str, str]:
    data = {
        "scope": "trace",
        "builtin_key": "",
        "name": "polite",
        "instructions": "Is {{ outputs }} polite?",
        "output_type": "boolean",
        "categories": "",
        "min_value": "",
        "max_value": "",
        "endpoint": str(endpoint.pk),
        "sample_rate_percent": "100",
        "filter_string": "",
        "session_idle_seconds": "",
        "daily_cost_cap_usd": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def field_block(page: str, field_id: str) -> str:
    """The `.field` element holding the input with this id, unescaped."""
    chunks = page.split('class="field')
    matches = [chunk for chunk in chunks if f'id="{field_id}"' in chunk]
    assert matches, f"no field {field_id}"
    return html_lib.unescape(matches[-1])


def is_hidden(page: str, field_id: str) -> bool:
    return bool(re.search(r'<div class="[^"]*"[^>]* hidden>\s*(<div class="field[^"]*">\s*)?<label for="' + field_id + '"', page))


def nothing_saved() -> None:
    assert not Judge.objects.exists() and not JudgeVersion.objects.exists()
    assert not Assessment.objects.exists() and not Evaluation.objects.exists()


# --- the form and its parts -----------------------------------------------------------------------------


def test_new_form_follows_the_docs_order_for_traces(editor_client, experiment, endpoint):
    response = editor_client.get(new_url(experiment))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and "New LLM judge" in page
    order = [">Scope</legend>", ">LLM judge</legend>", ">Name</label>", ">Instructions</label>", ">Output type</label>", ">Model</label>", ">Evaluation settings</legend>", ">Try it</h3>", ">Create judge</button>"]
    positions = [page.index(label) for label in order]
    assert positions == sorted(positions)
    # built-in trace judges with their descriptions, or a custom one
    assert "Custom judge" in page and "Relevance to query" in page
    assert "Does the response address what the user actually asked" in page
    assert "User frustration" not in page  # a session judge
    # variables for trace judges, inserted at the cursor
    assert 'data-insert-variable="{{ inputs }}"' in page and 'data-insert-variable="{{ trace }}"' in page
    assert 'data-insert-variable="{{ conversation }}"' not in page
    assert links_static(page, "evalapp/js/judge_form.js")  # which inserts them (setRangeText): every page loads it
    # the only endpoint is chosen, and it is clearly a stand-in
    assert re.search(rf'<option value="{endpoint.pk}" selected>Stand-in \(test\) — openai/evalapp-standin \(stand-in, not a real LLM\)', page)
    assert 'class="standin-label"' in page
    assert reverse("endpoint-list") in page and "Manage model endpoints" in page
    assert "Automatically evaluate future traces using this judge" in page
    assert 'name="sample_rate_percent"' in page and 'value="100"' in page
    assert is_hidden(page, "id_session_idle_seconds") and is_hidden(page, "id_categories") and is_hidden(page, "id_min_value")


def test_new_form_as_an_htmx_tab_swap(editor_client, experiment, endpoint):
    page = editor_client.get(new_url(experiment), **HX_TAB).content.decode()
    assert "<html" not in page and 'id="judge-form"' in page and 'class="tabs"' in page


def test_switching_to_sessions_rerenders_the_form_and_keeps_what_was_typed(editor_client, experiment, endpoint):
    typed = form_data(endpoint, scope="session", name="tone check", instructions="Was the tone kind in my words?", filter_string="metadata.x = '1'")
    response = editor_client.post(new_url(experiment), {**typed, "_refresh": "1"}, **HX_FORM)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<form id="judge-form"') and "<html" not in page and 'class="tabs"' not in page
    assert "User frustration" in page and "Relevance to query" not in page
    assert 'data-insert-variable="{{ conversation }}"' in page and 'data-insert-variable="{{ trace }}"' not in page
    assert "Automatically evaluate future sessions using this judge" in page
    assert not is_hidden(page, "id_session_idle_seconds")
    assert 'value="tone check"' in page and "Was the tone kind in my words?" in page
    assert "metadata.x = &#x27;1&#x27;" in page
    assert 'value="session" checked' in page
    nothing_saved()


def test_choosing_a_builtin_suggests_its_name_and_brings_its_output_type(editor_client, experiment, endpoint):
    picked = editor_client.post(
        new_url(experiment), {**form_data(endpoint, scope="session", name="", builtin_key="UserFrustration"), "_refresh": "1"}, **HX_FORM
    ).content.decode()
    assert 'value="user_frustration"' in picked
    assert "Categorical: none, resolved, unresolved" in picked and "set by the built-in judge" in picked
    assert "What User frustration asks the model" in picked
    assert 'data-insert-variable="' not in picked  # built-ins bring their own prompt

    # a suggested name follows the next built-in; a name of one's own stays
    followed = editor_client.post(
        new_url(experiment),
        {**form_data(endpoint, scope="session", name="user_frustration", builtin_key="ConversationalSafety"), "_builtin_before": "UserFrustration", "_refresh": "1"},
        **HX_FORM,
    ).content.decode()
    assert 'value="conversational_safety"' in followed
    kept = editor_client.post(
        new_url(experiment),
        {**form_data(endpoint, scope="session", name="my own", builtin_key="ConversationalSafety"), "_builtin_before": "UserFrustration", "_refresh": "1"},
        **HX_FORM,
    ).content.decode()
    assert 'value="my own"' in kept


def test_switching_scope_drops_a_builtin_of_the_other_scope(editor_client, experiment, endpoint):
    page = editor_client.post(
        new_url(experiment), {**form_data(endpoint, scope="trace", builtin_key="UserFrustration"), "_refresh": "1"}, **HX_FORM
    ).content.decode()
    assert re.search(r'name="builtin_key" value="" checked', page)
    assert "Instructions" in page


def test_guidelines_builtin_asks_for_guidelines(editor_client, experiment, endpoint):
    page = editor_client.post(new_url(experiment), {**form_data(endpoint, builtin_key="Guidelines"), "_refresh": "1"}, **HX_FORM).content.decode()
    assert '<label for="id_instructions">Guidelines</label>' in page


@pytest.mark.parametrize(
    ("output_type", "shown", "hidden"),
    [("categorical", "id_categories", "id_min_value"), ("integer", "id_min_value", "id_categories"), ("boolean", None, "id_categories")],
)
def test_output_type_shows_the_fields_it_needs(editor_client, experiment, endpoint, output_type, shown, hidden):
    page = editor_client.post(
        new_url(experiment), {**form_data(endpoint, output_type=output_type, categories="kept\nvalues"), "_refresh": "1"}, **HX_FORM
    ).content.decode()
    if shown:
        assert not is_hidden(page, shown)
    assert is_hidden(page, hidden)
    assert "kept\nvalues" in page  # hidden or not, what was typed is still in the form


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field_id", "message"),
    [
        ({"name": "!bad name"}, "id_name", "use up to 100 letters, digits"),
        ({"name": ""}, "id_name", "is required"),
        ({"instructions": "Is {{ output }} ok?"}, "id_instructions", "unknown variable {{ output }}"),
        ({"instructions": "Is it polite?"}, "id_instructions", "instructions use no variable"),
        ({"filter_string": "trace.sttus = 'OK'"}, "id_filter_string", "unknown field 'trace.sttus'; did you mean 'trace.status'?"),
        ({"output_type": "categorical", "categories": "only one"}, "id_categories", "give at least two allowed values"),
        ({"output_type": "integer", "min_value": "5", "max_value": "1"}, "id_max_value", "must be at least the minimum"),
        ({"output_type": "integer", "min_value": "1.5"}, "id_min_value", "must be a whole number"),
        ({"endpoint": ""}, "id_endpoint", "choose a model endpoint"),
        ({"sample_rate_percent": "150"}, "id_sample_rate_percent", "must be between 0 and 1 (0% to 100%)"),
        ({"sample_rate_percent": "half"}, "id_sample_rate_percent", "must be a number"),
        ({"daily_cost_cap_usd": "-3"}, "id_daily_cost_cap_usd", "must be a number ≥ 0"),
    ],
)
def test_errors_show_next_to_their_field_and_nothing_typed_is_lost(editor_client, experiment, endpoint, overrides, field_id, message):
    typed = form_data(endpoint, **{"filter_string": "metadata.environment = 'production'", "sample_rate_percent": "40", **overrides})
    typed["active"] = "on"
    response = editor_client.post(new_url(experiment), typed, **HX_FORM)
    assert response.status_code == 200
    page = response.content.decode()
    block = field_block(page, field_id)
    assert message in block and block.startswith(" has-error")
    assert "Nothing was saved" in page
    unescaped = html_lib.unescape(page)
    for field in ("name", "filter_string", "sample_rate_percent", "min_value", "max_value"):
        if typed.get(field):
            assert f'value="{typed[field]}"' in unescaped, field
    assert typed["instructions"] in unescaped
    assert 'name="active" id="id_active" checked' in page
    nothing_saved()


def test_a_duplicate_name_is_refused_inline(editor_client, experiment, endpoint):
    create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    response = editor_client.post(new_url(experiment), form_data(endpoint, instructions="Is {{ outputs }} rude?"))  # no htmx: full page
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert "this experiment already has a judge named 'polite'" in field_block(page, "id_name")
    assert "Is {{ outputs }} rude?" in html_lib.unescape(page)
    assert Judge.objects.count() == 1


# --- saving ---------------------------------------------------------------------------------------------


def test_saving_creates_the_judge_through_the_action(editor_client, experiment, endpoint, user):
    typed = form_data(
        endpoint,
        name="answer quality",
        instructions="Rate {{ outputs }} for {{ inputs }}",
        output_type="categorical",
        categories="good\n bad \n\nugly",
        sample_rate_percent="25",
        filter_string="trace.status = 'OK'",
        daily_cost_cap_usd="2.50",
    )
    typed["active"] = "on"
    response = editor_client.post(new_url(experiment), typed, **HX_FORM)
    assert response.status_code == 200 and response["HX-Redirect"] == tab_url(experiment)
    judge = Judge.objects.get()
    assert (judge.name, judge.scope, judge.builtin_key, judge.output_type) == ("answer quality", "trace", "", "categorical")
    assert judge.categories == ["good", "bad", "ugly"]
    assert judge.sample_rate == 0.25 and judge.filter_string == "trace.status = 'OK'"
    assert judge.active and judge.enabled_at is not None and str(judge.daily_cost_cap_usd) == "2.5000"
    assert judge.endpoint == endpoint and judge.created_by == user
    assert list(judge.versions.values_list("version", flat=True)) == [1]

    tab = editor_client.get(tab_url(experiment)).content.decode()
    notice = "Created the judge answer quality (automatically evaluating new traces)."
    # Inside the swapped part of the page, so the next tab switch takes the notice away.
    assert notice in tab[tab.index('<div id="experiment-page">') :]
    assert notice not in editor_client.get(tab_url(experiment)).content.decode()  # shown once


def test_saving_without_htmx_redirects(editor_client, experiment, endpoint):
    response = editor_client.post(new_url(experiment), form_data(endpoint))
    assert response.status_code == 302 and response["Location"] == tab_url(experiment)
    judge = Judge.objects.get()
    assert not judge.active and judge.sample_rate == 1.0 and judge.output_type == "boolean"


def test_a_session_builtin_judge_is_saved_with_its_idle_time(editor_client, experiment, endpoint):
    typed = form_data(endpoint, scope="session", builtin_key="UserFrustration", name="user_frustration", instructions="", session_idle_seconds="120")
    response = editor_client.post(new_url(experiment), typed, **HX_FORM)
    assert response.status_code == 200 and response["HX-Redirect"] == tab_url(experiment)
    judge = Judge.objects.get()
    assert (judge.scope, judge.builtin_key, judge.output_type, judge.categories) == ("session", "UserFrustration", "categorical", ["none", "resolved", "unresolved"])
    assert judge.session_idle_seconds == 120


# --- editing --------------------------------------------------------------------------------------------


def test_edit_form_has_the_name_fixed_and_shows_the_version(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint, sample_rate=0.3)
    for headers in ({}, HX_TAB):
        page = editor_client.get(edit_url(judge), **headers).content.decode()
        assert "Edit LLM judge" in page and ("<html" in page) == (not headers)
        assert '<input type="text" id="id_name" value="polite" readonly' in page and 'name="name"' not in page
        assert "Version 1" in page and "by pat" not in page  # created without a user
        assert 'value="30"' in page and "Is {{ outputs }} polite?" in html_lib.unescape(page)
        assert reverse("judge-delete", args=[experiment.pk, judge.pk]) in page


def test_editing_what_the_judge_asks_makes_version_2(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    typed = form_data(endpoint, name="renamed", instructions="Is {{ outputs }} polite and short?")
    response = editor_client.post(edit_url(judge), typed, **HX_FORM)
    assert response.status_code == 200 and response["HX-Redirect"] == tab_url(experiment)
    judge.refresh_from_db()
    assert judge.name == "polite"  # the name can't change
    assert (judge.version, judge.instructions) == (2, "Is {{ outputs }} polite and short?")
    assert list(judge.versions.values_list("version", flat=True)) == [2, 1]
    tab = editor_client.get(tab_url(experiment)).content.decode()
    assert "Saved polite: now version 2." in tab and "v2" in tab
    assert "Version 2" in editor_client.get(edit_url(judge)).content.decode()


def test_switching_on_in_the_form_keeps_the_version(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    editor_client.post(edit_url(judge), {**form_data(endpoint), "active": "on"})
    judge.refresh_from_db()
    assert judge.active and judge.version == 1


def test_edit_errors_rerender_with_what_was_typed(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    typed = form_data(endpoint, instructions="Is {{ outputs }} short?", filter_string="trace.status = ")
    response = editor_client.post(edit_url(judge), typed, **HX_FORM)
    assert response.status_code == 200
    page = html_lib.unescape(response.content.decode())
    assert page.lstrip().startswith('<form id="judge-form"')
    assert "Is {{ outputs }} short?" in page and 'value="trace.status = "' in page
    assert "(at column" in field_block(response.content.decode(), "id_filter_string")
    judge.refresh_from_db()
    assert (judge.version, judge.instructions) == (1, "Is {{ outputs }} polite?")


# --- deleting -------------------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint, active=True)
    url = reverse("judge-delete", args=[experiment.pk, judge.pk])
    for headers in ({}, HX_TAB):
        page = editor_client.get(url, **headers).content.decode()
        assert "Delete the judge polite?" in page and "It is automatically evaluating traces now" in page
        assert ("<html" in page) == (not headers)
    assert Judge.objects.exists()
    response = editor_client.post(url, **HX)
    assert response["HX-Redirect"] == tab_url(experiment)
    assert not Judge.objects.exists()
    assert "Deleted the judge polite." in editor_client.get(tab_url(experiment)).content.decode()


# --- viewers --------------------------------------------------------------------------------------------


def test_viewers_may_read_a_judge_but_not_change_anything(viewer_client, experiment, endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    page = viewer_client.get(edit_url(judge)).content.decode()
    assert "Is {{ outputs }} polite?" in html_lib.unescape(page) and "can read this judge" in page
    assert '<fieldset class="plain" disabled>' in page
    assert "Save</button>" not in page and "Try it</button>" not in page and "Delete…" not in page

    changes = [
        ("get", new_url(experiment), {}),
        ("post", new_url(experiment), form_data(endpoint, name="other")),
        ("post", new_url(experiment), {**form_data(endpoint), "_refresh": "1"}),
        ("post", edit_url(judge), form_data(endpoint, instructions="Is {{ outputs }} rude?")),
        ("post", reverse("judge-try-new", args=[experiment.pk]), form_data(endpoint)),
        ("post", reverse("judge-try", args=[experiment.pk, judge.pk]), form_data(endpoint)),
        ("get", reverse("judge-delete", args=[experiment.pk, judge.pk]), {}),
        ("post", reverse("judge-delete", args=[experiment.pk, judge.pk]), {}),
    ]
    for method, url, data in changes:
        assert getattr(viewer_client, method)(url, data, **HX).status_code == 403, (method, url)
    judge.refresh_from_db()
    assert (Judge.objects.count(), judge.version, judge.instructions) == (1, 1, "Is {{ outputs }} polite?")


def test_pages_need_a_login(client, experiment):
    response = client.get(new_url(experiment))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the live filter check ------------------------------------------------------------------------------


def check(client, experiment, text: str, scope: str = "trace") -> str:
    response = client.get(reverse("judge-filter-check", args=[experiment.pk]), {"filter_string": text, "scope": scope}, **HX)
    assert response.status_code == 200
    return html_lib.unescape(response.content.decode())


def test_filter_check_counts_recent_matching_traces(editor_client, experiment):
    staging = {"metadata": {"environment": "staging"}}
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2, **staging))
    assert "Matches 2 of the 3 traces so far." in check(editor_client, experiment, "metadata.environment = 'production'")
    assert "Matches none of the 3 traces so far" in check(editor_client, experiment, "metadata.environment = 'dev'")
    assert "No filter: every trace is considered." in check(editor_client, experiment, "  ")
    broken = check(editor_client, experiment, "trace.sttus = 'OK'")
    assert "unknown field 'trace.sttus'; did you mean 'trace.status'?" in broken and "(at column 1)" in broken


def test_filter_check_looks_at_the_newest_thousand(editor_client, experiment, monkeypatch):
    monkeypatch.setattr("evalapp.ui.judges.FILTER_CHECK_WINDOW", 2)
    staging = {"metadata": {"environment": "staging"}}
    ingest(experiment, make_trace("old", **staging), make_trace("t2", minutes=1), make_trace("t3", minutes=2, **staging))
    assert "Matches 1 of the last 2 traces." in check(editor_client, experiment, "metadata.environment = 'staging'")


def test_filter_check_for_sessions_reads_their_first_trace(editor_client, experiment):
    staging = {"metadata": {"environment": "staging"}}
    ingest(
        experiment,
        make_trace("a1", session_id="a"),
        make_trace("a2", minutes=1, session_id="a", **staging),
        make_trace("b1", minutes=2, session_id="b", **staging),
        make_trace("b2", minutes=3, session_id="b"),
    )
    assert "Matches 1 of the 2 sessions so far." in check(editor_client, experiment, "metadata.environment = 'production'", "session")


def test_the_form_shows_the_filter_check_on_load(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint, filter_string="trace.status = 'OK'")
    assert "Matches 1 of the 1 trace so far." in editor_client.get(edit_url(judge)).content.decode()


# --- Try it ---------------------------------------------------------------------------------------------


def try_it(client, experiment, data: dict, judge=None) -> str:
    """Press Try it, let a worker make the call, and return what the polling result area shows then."""
    url = reverse("judge-try", args=[experiment.pk, judge.pk]) if judge else reverse("judge-try-new", args=[experiment.pk])
    response = client.post(url, data, **HX)
    assert response.status_code == 200
    shown = html_lib.unescape(response.content.decode())
    tried = TryRun.objects.order_by("-created_at").first()
    if tried is None:  # refused before anything was queued
        assert "hx-trigger" not in shown
        return shown
    assert "try-waiting" in shown and 'hx-trigger="every 2s"' in shown  # the request only queued the call
    assert try_runs.run(str(tried.pk))  # what the worker's task does
    response = client.get(reverse("judge-try-result", args=[experiment.pk, tried.pk]), **HX)
    assert response.status_code == 200
    shown = html_lib.unescape(response.content.decode())
    assert "hx-trigger" not in shown  # the answer is there: the polling stops
    return shown


def test_try_it_runs_the_unsaved_judge_on_the_newest_matching_trace(editor_client, experiment, endpoint, standin):
    staging = {"metadata": {"environment": "staging"}}
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2, **staging))
    result = try_it(editor_client, experiment, form_data(endpoint, filter_string="metadata.environment = 'production'"))
    assert re.search(r'class="chip chip-(pass|fail)"', result)
    assert "on trace <code>t2</code>" in result  # the newest one the filter lets through
    assert "[stand-in model]" in result and "stand-in model, not a real LLM" in result
    assert re.search(r"cost \$0\.0\d+", result) and "tokens in" in result and "nothing was saved" in result
    assert len(standin.requests) == 1
    assert "Is ⟦OUTPUTS⟧ polite?" in standin.requests[0]["body"]["messages"][0]["content"]  # the unsaved instructions
    assert "Prompt sent · raw answer" in result and "Is ⟦OUTPUTS⟧ polite?" in result  # the rendered prompt, shown
    nothing_saved()


def test_try_it_on_a_named_trace_with_a_numeric_answer(editor_client, experiment, endpoint, standin):
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    data = {**form_data(endpoint, output_type="integer", min_value="1", max_value="5", instructions="Rate {{ outputs }} 1-5"), "try_target": "t1"}
    result = try_it(editor_client, experiment, data)
    assert "on trace <code>t1</code>" in result and 'class="chip chip-number"' in result
    nothing_saved()


def test_try_it_on_an_existing_judge_uses_the_edits_and_changes_nothing(editor_client, experiment, endpoint, standin):
    ingest(experiment, make_trace("t1"))
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    result = try_it(editor_client, experiment, form_data(endpoint, instructions="Is {{ outputs }} in English?"), judge)
    assert "[stand-in model]" in result
    assert "Is ⟦OUTPUTS⟧ in English?" in standin.requests[0]["body"]["messages"][0]["content"]
    judge.refresh_from_db()
    assert (judge.version, judge.instructions) == (1, "Is {{ outputs }} polite?")
    assert not Assessment.objects.exists() and not Evaluation.objects.exists() and JudgeVersion.objects.count() == 1


def test_try_it_on_a_session(editor_client, experiment, endpoint, standin):
    ingest(experiment, make_trace("a1", session_id="conv-1"), make_trace("a2", minutes=1, session_id="conv-1"))
    data = form_data(endpoint, scope="session", builtin_key="UserFrustration", name="", instructions="")
    result = try_it(editor_client, experiment, data)
    assert "on session <code>conv-1</code>" in result and 'class="chip chip-category"' in result
    nothing_saved()


def test_try_it_explains_a_failed_call_in_plain_words(editor_client, experiment, endpoint, standin, fast_retries):
    ingest(experiment, make_trace("t1"))
    standin.config.script = ["500", "500", "500"]
    result = try_it(editor_client, experiment, form_data(endpoint))
    assert 'class="chip chip-error"' in result and "Provider error:" in result
    nothing_saved()


def test_try_it_lists_what_to_fix_first_and_calls_no_model(editor_client, experiment, endpoint, standin):
    ingest(experiment, make_trace("t1"))
    result = try_it(editor_client, experiment, form_data(endpoint, name="", instructions="Is {{ output }} ok?", filter_string="x ="))
    assert "Fix these before trying it" in result and "instructions: unknown variable {{ output }}" in result
    assert "filter string:" in result
    assert "name:" not in result  # a judge can be tried before it has a name
    assert standin.requests == []
    nothing_saved()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "This experiment has no traces yet to try it on."),
        ({"filter_string": "trace.status = 'ERROR'"}, "No recent trace matches the filter"),
        ({"try_target": "nope"}, "There is no trace 'nope' in this experiment."),
    ],
)
def test_try_it_without_anything_to_judge_says_so(editor_client, experiment, endpoint, standin, extra, message):
    if extra:
        ingest(experiment, make_trace("t1"))
    result = try_it(editor_client, experiment, {**form_data(endpoint), **extra})
    assert message in result and standin.requests == []
