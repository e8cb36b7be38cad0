"""Small helpers for the judging engine's hot statements written in SQL rather than through the ORM: per round, Django
compiling them cost more of the draining thread than the databases spent running them (design notes 53, 54)."""

from __future__ import annotations

from django.db import connection


def rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def when(moment) -> object:
    """A datetime as the backend stores it (SQLite: its text in UTC), for comparisons and assignments."""
    return connection.ops.adapt_datetimefield_value(moment)


def placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))
