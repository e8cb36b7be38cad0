"""The Traces and Judges tabs' queries use the indexes that find only their rows, on SQLite, whose planner has no
statistics and picks an index by how many of its columns a query pins (design note 48). At a million traces each
bad pick below read millions of rows: the verdict chips through the (name, source_type, valid) index, evaluations
through the shadow or the judge index, people's labels in id order."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from judges.actions import create_judge
from tests.conftest import ingest, judge_now, make_trace

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner, which has no statistics, is the one that chose badly"),
]

# Indexes that hold every verdict or evaluation of a judge (or every live one): reading through them is reading all.
WIDE = ("judges_evaluation_shadow_id", "judges_evaluation_judge_id", "evaluation_judge_finished", "assessment_judge_time", "assessment_name_source")


def plans_of(client, url: str, table: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    plans = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            sql = query["sql"]
            if f'"{table}"' in sql and sql.lstrip().upper().startswith("SELECT"):
                plans += [row[-1] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
    return plans


@pytest.fixture
def judged(experiment, endpoint):
    traces = ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(3)])
    judges = [create_judge(experiment, name=name, instructions="Is {{ outputs }} ok?", endpoint=endpoint) for name in ("helpful", "safe")]
    for judge in judges:
        for trace in traces:
            judge_now(judge, trace)
    return experiment


@pytest.mark.parametrize("table", ["traces_assessment", "judges_evaluation"])
@pytest.mark.parametrize("page", ["experiment-traces", "experiment-judges"])
def test_the_tabs_read_verdicts_and_evaluations_by_their_own_indexes(editor_client, judged, page, table):
    plans = plans_of(editor_client, reverse(page, args=[judged.pk]), table)

    assert plans
    assert not [plan for plan in plans if plan.startswith(f"SCAN {table}") or any(index in plan for index in WIDE)], plans
