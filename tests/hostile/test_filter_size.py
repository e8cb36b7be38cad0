"""A filter's size: refused past a stated length, number of conditions and nesting depth, with the limit in the
message; anything within the limits (even raised to their highest) is evaluated without running out of stack, in
memory and in the database."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.conf import settings
from django.urls import reverse

from judges.models import Judge
from tests.conftest import BASE_TIME
from tests.hostile.conftest import ingest_named
from tests.ui.test_judge_form import HX_FORM, field_block, form_data, new_url
from traces import filters
from traces.filter_memory import FilterRecord, matches
from traces.filter_sql import filter_traces
from traces.filters import HIGHEST_LIMITS, FilterError, FilterLimits, parse, validate
from traces.models import Trace

pytestmark = pytest.mark.hostile

THREE_THOUSAND_ORS = " OR ".join(f"trace.name = 'n{n}'" for n in range(3000))
FOUR_HUNDRED_PARENTHESES = "(" * 400 + "trace.status = 'OK'" + ")" * 400


def record(name: str, started_at: datetime = BASE_TIME) -> FilterRecord:
    return FilterRecord(status="OK", name=name, duration_ms=10, started_at=started_at)


def ors(count: int) -> str:
    return " OR ".join(f"trace.name='n{n}'" for n in range(count))


def nested(depth: int, *, with_not: bool = False) -> str:
    """`depth` levels of parentheses (every other one NOT instead, with_not) around a condition on the name."""
    text = "trace.name = 'n1'"
    for level in range(depth):
        text = f"NOT {text}" if with_not and level % 2 else f"({text} OR trace.name = 'x{level}')"
    return text


def test_three_thousand_ors_are_refused_naming_the_limit():
    assert "the filter is 70,886 characters long; the limit is 4,000" in (validate(THREE_THOUSAND_ORS) or "")
    with pytest.raises(FilterError, match="more than 500 conditions .*; the limit is 500"):
        parse(THREE_THOUSAND_ORS, HIGHEST_LIMITS)


def test_more_conditions_than_the_limit_are_refused_naming_it():
    message = validate(" OR ".join(f"tags.t='{n}'" for n in range(101)))
    assert message is not None and "more than 100 conditions" in message and "the limit is 100" in message


def test_four_hundred_nested_parentheses_are_refused_naming_the_limit():
    message = validate(FOUR_HUNDRED_PARENTHESES)
    assert message is not None and "nested more than 20 deep; the limit is 20 (at column 21)" in message


def test_a_long_chain_of_not_is_refused_naming_the_limit():
    message = validate("NOT " * 30 + "trace.status = 'OK'")
    assert message is not None and "nested more than 20 deep; the limit is 20 (at column 81)" in message
    with pytest.raises(FilterError, match="the limit is 50"):
        parse("NOT " * 20_000 + "trace.status = 'OK'", HIGHEST_LIMITS)


def test_a_long_filter_is_refused_naming_the_limit():
    text = "trace.name = '" + "x" * 5000 + "'"
    message = validate(text)
    assert message is not None and "the filter is 5,015 characters long; the limit is 4,000" in message


def test_each_value_of_an_in_list_counts_as_a_condition():
    def user_in(count: int) -> str:
        return "trace.user_id IN (" + ", ".join(f"'u{n}'" for n in range(count)) + ")"

    assert validate(user_in(100)) is None
    assert "more than 100 conditions" in (validate(user_in(101)) or "")


@pytest.mark.django_db
def test_the_judges_api_refuses_a_judge_with_three_thousand_ors(api, experiment, endpoint):
    url = f"/api/v1/experiments/{experiment.pk}/judges"
    body = {"name": "huge", "instructions": "Is {{ outputs }} ok?", "endpoint": endpoint.name, "active": True, "filter_string": THREE_THOUSAND_ORS}
    response = api.post(url, body, format="json")
    assert response.status_code == 400
    assert "the limit is 4,000" in response.json()["errors"][0]["message"]
    assert not Judge.objects.exists()


@pytest.mark.django_db
def test_the_judge_form_shows_the_nesting_limit(client, user, experiment, endpoint):
    client.force_login(user)
    response = client.post(new_url(experiment), form_data(endpoint, filter_string=FOUR_HUNDRED_PARENTHESES), **HX_FORM)
    assert response.status_code == 200
    assert "the limit is 20" in field_block(response.content.decode(), "id_filter_string")
    assert not Judge.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", [THREE_THOUSAND_ORS, FOUR_HUNDRED_PARENTHESES])
def test_the_traces_api_and_tab_answer_with_the_limit(api, experiment, client, viewer, text):
    response = api.get(f"/api/v1/experiments/{experiment.pk}/traces", {"filter_string": text})
    assert response.status_code == 400 and "the limit is" in response.json()["detail"]
    client.force_login(viewer)
    page = client.get(reverse("experiment-traces", args=[experiment.pk]), {"q": text})
    assert page.status_code == 200 and "the limit is" in page.content.decode()


def test_the_limits_come_from_the_settings():
    assert filters.LIMITS == FilterLimits(
        max_length=settings.EVALAPP_FILTER_MAX_LENGTH,
        max_conditions=settings.EVALAPP_FILTER_MAX_CONDITIONS,
        max_depth=settings.EVALAPP_FILTER_MAX_DEPTH,
        max_like_length=settings.EVALAPP_FILTER_MAX_LIKE_LENGTH,
        max_like_wildcards=settings.EVALAPP_FILTER_MAX_LIKE_WILDCARDS,
    )


@pytest.mark.parametrize("limits", [FilterLimits(), HIGHEST_LIMITS], ids=["default", "highest"])
def test_a_filter_at_the_limits_is_evaluated_in_memory(limits):
    wide, deep = parse(ors(limits.max_conditions), limits), parse(nested(limits.max_depth), limits)
    assert matches(wide, record("n1")) and not matches(wide, record("other"))
    assert matches(deep, record("n1")) and not matches(deep, record("other"))
    with pytest.raises(FilterError, match=f"the limit is {limits.max_depth}"):
        parse(nested(limits.max_depth + 1), limits)
    with pytest.raises(FilterError, match=f"the limit is {limits.max_conditions}"):
        parse(ors(limits.max_conditions + 1), limits)


@pytest.mark.django_db
@pytest.mark.parametrize("limits", [FilterLimits(), HIGHEST_LIMITS], ids=["default", "highest"])
def test_a_filter_at_the_limits_is_evaluated_in_the_database(experiment, monkeypatch, limits):
    monkeypatch.setattr(filters, "LIMITS", limits)
    ingest_named(experiment, a="n1", b="other")
    names = {"a": "n1", "b": "other"}
    start = int(BASE_TIME.timestamp() * 1000)  # both traces start then
    milliseconds = ", ".join(str(start + offset) for offset in range(1 - limits.max_conditions, 1))
    texts = [ors(limits.max_conditions), nested(limits.max_depth), nested(limits.max_depth, with_not=True), f"trace.timestamp_ms IN ({milliseconds})"]
    for text in texts:
        node = parse(text)
        in_memory = {trace_id for trace_id, name in names.items() if matches(node, record(name))}
        in_database = set(filter_traces(Trace.objects.all(), text).values_list("trace_id", flat=True))
        assert in_database == in_memory and in_memory, text[:80]
