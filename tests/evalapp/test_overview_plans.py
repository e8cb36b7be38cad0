"""PostgreSQL planner settings for the Overview's window aggregates (evalapp.overview.sql.window_plans)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalapp.models import OverviewHour
from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import parse_range
from evalapp.overview.sql import window_plans
from traces.actions import create_experiment, ingest_traces
from traces.payload import parse_trace_batch

postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="planner settings exist on PostgreSQL only")


def show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def settings() -> tuple[str, str]:
    return show("enable_mergejoin"), show("max_parallel_workers_per_gather")


@postgresql_only
@pytest.mark.django_db
def test_inside_an_outer_transaction_the_settings_are_set_then_given_back(experiment):
    before = settings()
    with transaction.atomic():  # as in a request inside a transaction: the settings must not leak into the rest
        with window_plans():
            assert settings() == ("off", "0")
        assert settings() == before
        with pytest.raises(ZeroDivisionError), window_plans():
            1 / 0
        assert settings() == before
        compute_overview(experiment, parse_range({"range": "24h"}))
        assert settings() == before


@postgresql_only
@pytest.mark.django_db
def test_a_database_error_inside_is_the_error_raised(experiment):
    with pytest.raises(DatabaseError, match="no_such_table"), transaction.atomic(), window_plans():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_settings_last_one_transaction_and_the_hours_are_stored():
    # What a request does (no outer transaction): window_plans opens one, and the rollups' store nests in it.
    experiment = create_experiment("autocommit")
    started = timezone.now() - timedelta(days=2)
    trace = {"trace_id": "t1", "start_time": started.isoformat(), "end_time": (started + timedelta(seconds=1)).isoformat()}
    ingest_traces(experiment, parse_trace_batch([trace], max_traces=10))
    before = settings()
    with CaptureQueriesContext(connection) as queries:
        overview = compute_overview(experiment, parse_range({"range": "7d"}))
    assert overview["performance"]["traces"] == 1
    assert any("set_config('enable_mergejoin'" in query["sql"] for query in queries.captured_queries)
    assert settings() == before  # gone with the transaction
    stored = OverviewHour.objects.filter(experiment=experiment)
    assert stored.exists() and all(hour.computed_version == hour.version for hour in stored)  # fresh, committed


@pytest.mark.django_db
def test_outside_postgresql_it_runs_no_sql(experiment):
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL window_plans runs SQL by design (the tests above cover it)")
    with CaptureQueriesContext(connection) as queries, window_plans():
        pass
    assert queries.captured_queries == []
