"""Recording a verdict: the earlier one becomes history, and finding it reads only the target's own verdicts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from judges.actions import create_judge
from tests.conftest import ingest, make_trace, record_verdict
from traces.models import Assessment, AssessmentSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge(experiment, endpoint):
    return create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)


def test_a_new_verdict_makes_the_judges_earlier_one_history_and_leaves_other_verdicts_alone(experiment, judge):
    first, other = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    old = record_verdict(judge, first, True)
    elsewhere = record_verdict(judge, other, True)
    human = Assessment.objects.create(trace=first, name="helpful", value=False, source_type=AssessmentSource.HUMAN, source_id="pm")
    new = record_verdict(judge, first, False)
    assert new.overrides_id == old.pk
    valid = dict(Assessment.objects.filter(trace__in=[first, other]).values_list("pk", "valid"))
    assert valid == {old.pk: False, new.pk: True, elsewhere.pk: True, human.pk: True}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner, which has no statistics, is the one that chose badly")
def test_recording_a_verdict_reads_the_targets_verdicts_by_its_index_not_every_verdict_of_the_judge(experiment, judge):
    [trace] = ingest(experiment, make_trace("t1"))
    record_verdict(judge, trace, True)
    with CaptureQueriesContext(connection) as queries:
        record_verdict(judge, trace, False)
    plans = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            sql = query["sql"]
            if "traces_assessment" in sql and sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                plans += [row[-1] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
    assert plans and not [plan for plan in plans if "assessment_name_source" in plan or plan.startswith("SCAN traces_assessment")]
