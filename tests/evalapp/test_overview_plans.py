"""PostgreSQL planner settings for the Overview's window aggregates (evalapp.overview.window_plans)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from evalapp.overview import compute_overview, parse_range, window_plans

pytestmark = pytest.mark.django_db


def show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="planner settings exist on PostgreSQL only")
def test_merge_joins_and_parallel_workers_are_off_inside_and_back_after(experiment):
    before = (show("enable_mergejoin"), show("max_parallel_workers_per_gather"))
    with transaction.atomic():  # as in a request inside a transaction: the settings must not leak into the rest
        with window_plans():
            assert (show("enable_mergejoin"), show("max_parallel_workers_per_gather")) == ("off", "0")
        assert (show("enable_mergejoin"), show("max_parallel_workers_per_gather")) == before
        compute_overview(experiment, parse_range({"range": "24h"}))
        assert (show("enable_mergejoin"), show("max_parallel_workers_per_gather")) == before


def test_outside_postgresql_nothing_is_set(experiment):
    with window_plans():
        pass  # no SQL: SQLite has no such settings
    assert compute_overview(experiment, parse_range({"range": "24h"}))["performance"]["traces"] == 0
