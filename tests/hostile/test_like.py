"""LIKE and ILIKE in the filter language: decided in time linear in the text (no backtracking), the same way in
memory and in the database, and bounded in size."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from judges import selection
from judges.actions import create_judge
from judges.models import Evaluation
from tests.hostile.conftest import deadline, ingest_named
from traces.filter_memory import FilterRecord, matches
from traces.filter_sql import filter_traces
from traces.filters import parse, validate
from traces.like import like
from traces.models import Trace

pytestmark = pytest.mark.hostile

BACKTRACKING = "%a%a%a%a%a%a%a%a%a%a%a%a%b"  # on 300 a's, a backtracking matcher tries ~300^12 ways
LONG_NAME = "a" * 299  # names are at most 300 characters


def record(name: str) -> FilterRecord:
    return FilterRecord(status="OK", name=name, duration_ms=10, started_at=datetime(2026, 11, 20, tzinfo=UTC))


@pytest.mark.parametrize("op", ["LIKE", "ILIKE"])
def test_a_backtracking_pattern_is_decided_at_once_in_memory(op):
    node = parse(f"trace.name {op} '{BACKTRACKING}'")
    with deadline(2):
        assert matches(node, record(LONG_NAME)) is False
        assert matches(node, record(LONG_NAME + "b")) is True


@pytest.mark.django_db
@pytest.mark.parametrize("op", ["LIKE", "ILIKE"])
def test_a_backtracking_pattern_is_decided_at_once_in_the_database(experiment, op):
    ingest_named(experiment, long=LONG_NAME, ends_in_b=LONG_NAME + "b")
    with deadline(2):
        found = set(filter_traces(Trace.objects.all(), f"trace.name {op} '{BACKTRACKING}'").values_list("trace_id", flat=True))
    assert found == {"ends_in_b"}


@pytest.mark.django_db
def test_a_viewer_typing_it_on_the_traces_tab_gets_the_page_at_once(experiment, viewer_client):
    ingest_named(experiment, long=LONG_NAME)
    url = reverse("experiment-traces", args=[experiment.pk])
    with deadline(2):
        response = viewer_client.get(url, {"q": f"trace.name LIKE '{BACKTRACKING}'"})
    assert response.status_code == 200
    assert "No traces match these filters." in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_judge_filtering_with_it_does_not_slow_ingest(experiment, endpoint):
    judge = create_judge(
        experiment, endpoint=endpoint, name="b_enders", instructions="Is {{ outputs }} ok?", active=True,
        filter_string=f"trace.name LIKE '{BACKTRACKING}'",
    )
    with deadline(5):  # ingesting may select already (tasks run inline in tests)
        ingest_named(experiment, **{f"t{n}": LONG_NAME for n in range(20)}, ends_in_b=LONG_NAME + "b")
        selection.select_traces(experiment.pk, list(Trace.objects.values_list("pk", flat=True)))
    assert set(Evaluation.objects.filter(judge=judge).values_list("trace__trace_id", flat=True)) == {"ends_in_b"}


def backtracking_like(text: str, pattern: str) -> bool:
    """The old way, fine on short strings: a reference for the linear matcher."""
    regex = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


@given(text=st.text("ab%_\n", max_size=12), pattern=st.text("ab%_", max_size=8))
def test_the_linear_matcher_agrees_with_backtracking_on_short_strings(text, pattern):
    assert like(text, pattern) is backtracking_like(text, pattern)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pattern", "names", "expected"),
    [
        # What SQL LIKE/GLOB would read as their own syntax is plain text in ours.
        ("a*b", ["a*b", "axb", "A*B"], {"a*b"}),
        ("a?b", ["a?b", "axb"], {"a?b"}),
        ("[ab]%", ["[ab]c", "ac", "bc"], {"[ab]c"}),
        ("%\\\\", ["ends\\", "ends"], {"ends\\"}),  # a backslash (written \\ in the filter) is not an escape in SQL either
        ("50^%", ["50^%", "50^x", "50^"], {"50^%", "50^x", "50^"}),
        ("a_c", ["abc", "ac", "abbc", "a\nc", "aéc"], {"abc", "a\nc", "aéc"}),
        ("%x%x%", ["xx", "x", "axbxc", "xxx"], {"xx", "axbxc", "xxx"}),
        ("Caf_", ["Café", "café", "CAFÉ"], {"Café"}),
    ],
)
def test_like_reads_only_percent_and_underscore_as_wildcards_the_same_everywhere(experiment, pattern, names, expected):
    ingest_named(experiment, **{f"t{index}": name for index, name in enumerate(names)})
    by_id = dict(enumerate(names))
    text = f"trace.name LIKE '{pattern}'"
    in_memory = {by_id[index] for index in by_id if matches(parse(text), record(by_id[index]))}
    in_database = {by_id[int(trace_id[1:])] for trace_id in filter_traces(Trace.objects.all(), text).values_list("trace_id", flat=True)}
    assert in_memory == in_database == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pattern", "names", "expected"),
    [
        ("caf_", ["Café", "CAFÉ", "cafe", "chef"], {"Café", "CAFÉ", "cafe"}),
        ("%ÉTÉ%", ["un été chaud", "ÉTÉ", "ete"], {"un été chaud", "ÉTÉ"}),
        ("straße", ["STRASSE", "Straße"], {"Straße"}),  # one character for one: ß is not ss
    ],
)
def test_ilike_ignores_case_beyond_ascii_the_same_everywhere(experiment, pattern, names, expected):
    ingest_named(experiment, **{f"t{index}": name for index, name in enumerate(names)})
    by_id = dict(enumerate(names))
    text = f"trace.name ILIKE '{pattern}'"
    in_memory = {by_id[index] for index in by_id if matches(parse(text), record(by_id[index]))}
    in_database = {by_id[int(trace_id[1:])] for trace_id in filter_traces(Trace.objects.all(), text).values_list("trace_id", flat=True)}
    assert in_memory == in_database == expected


def test_a_long_like_pattern_is_refused_naming_the_limit():
    message = validate("trace.name LIKE '" + "x" * 201 + "'")
    assert message is not None and "201 characters" in message and "limit is 200" in message


def test_a_like_pattern_with_many_wildcards_is_refused_naming_the_limit():
    message = validate("span.name ILIKE '" + "%a" * 21 + "'")
    assert message is not None and "21 wildcards" in message and "limit is 20" in message


def test_patterns_within_the_limits_are_accepted():
    assert validate("trace.name LIKE '" + "%a" * 10 + "_" * 10 + "x" * 170 + "'") is None


@pytest.mark.django_db
def test_the_api_answers_400_naming_the_like_limit(api, experiment):
    response = api.get(f"/api/v1/experiments/{experiment.pk}/traces", {"filter_string": "trace.name LIKE '" + "%_" * 30 + "'"})
    assert response.status_code == 400
    assert "limit is 20" in response.json()["detail"]
