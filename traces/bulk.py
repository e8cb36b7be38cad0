"""A lean bulk upsert for the ingestion hot path.

`QuerySet.bulk_create(update_conflicts=True)` spends most of its time preparing each value through the field
machinery (~8 µs a value; 6,000 values per 100-trace batch). This writes the same rows with the same
`ON CONFLICT (...) DO UPDATE` semantics, values adapted as the backend's own adapters do, so what is stored is
identical — by the cheapest route each database has:

- PostgreSQL: `COPY` into a temporary table, then one `INSERT ... SELECT ... ON CONFLICT DO UPDATE`. A multi-row
  `VALUES` statement was mostly spent in psycopg's client-side query building (splitting a 6,000-placeholder
  statement and quoting every value as a literal, in Python); COPY streams the rows through psycopg's C dumpers.
- SQLite: `executemany` of a one-row statement (prepared once, bound per row in C) when nothing is returned;
  a multi-row `INSERT ... RETURNING` when something is (sqlite3's executemany drops returned rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Model

# Both backends allow far more; this keeps a statement's parameters well under SQLite's 32,766 limit.
MAX_PARAMETERS = 20_000


def _adapter(field) -> Callable[[Any], Any]:
    ops = connection.ops
    if field.is_relation:  # a foreign key holds its target's value (a UUID primary key: SQLite stores its hex)
        field = field.target_field
    internal = field.get_internal_type()
    if internal == "DateTimeField":
        if connection.vendor == "sqlite" and settings.USE_TZ:
            # What SQLite's adapt_datetimefield_value makes of an aware value (its text in the connection's time
            # zone, naive), without its checks: a tenth of the in-process ingest time went there.
            zone = connection.timezone
            return lambda value: (
                None
                if value is None
                else str(value.astimezone(zone).replace(tzinfo=None))
                if value.tzinfo is not None
                else ops.adapt_datetimefield_value(value)
            )
        return lambda value: None if value is None else ops.adapt_datetimefield_value(value)
    if internal == "JSONField":
        return lambda value: None if value is None else ops.adapt_json_value(value, field.encoder)
    if internal == "UUIDField":  # SQLite: its hex
        return lambda value: None if value is None else field.get_db_prep_value(value, connection)
    if internal == "DecimalField":
        return lambda value: None if value is None else ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)
    return lambda value: value


def _copy_adapter(field) -> Callable[[Any], Any]:
    """Values for PostgreSQL's COPY: JSON as its text (the server parses it into jsonb, as it does the parameter
    Django would send); everything else as psycopg dumps it for a query."""
    if field.get_internal_type() == "JSONField":
        encoder = field.encoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder)
    return _adapter(field)


def upsert(
    model: type[Model],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: list[str],
    update: list[str],
    returning: list[str] | None = None,
) -> list[tuple]:
    """Insert `rows` (dicts keyed by attname, all with the same keys) or update the `update` columns of rows
    that collide on `conflict` (none: a plain insert). Returns the `returning` columns of every row written,
    inserted or updated (in no particular order). Two rows of one call must not collide with each other (the
    database refuses that)."""
    if not rows:
        return []
    fields = {field.attname: field for field in model._meta.concrete_fields}
    names = list(rows[0])
    unknown = [name for name in [*names, *conflict, *update, *(returning or [])] if name not in fields]
    if unknown:
        raise ValueError(f"{model.__name__} has no column(s) {unknown}")
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [quote(fields[name].column) for name in names]
    tail = (
        f" ON CONFLICT ({', '.join(quote(fields[name].column) for name in conflict)}) DO UPDATE SET "
        + ", ".join(f"{quote(fields[name].column)} = EXCLUDED.{quote(fields[name].column)}" for name in update)
        if conflict
        else ""
    )
    if returning:
        tail += " RETURNING " + ", ".join(quote(fields[name].column) for name in returning)
    if connection.vendor == "postgresql":
        return _copy_upsert(model, fields, names, rows, tail, returning=bool(returning))

    adapters = [_adapter(fields[name]) for name in names]
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    with connection.cursor() as cursor:
        if not returning:
            cursor.executemany(
                insert + row_sql + tail,
                [[adapt(row[name]) for adapt, name in zip(adapters, names, strict=True)] for row in rows],
            )
            return []
        written: list[tuple] = []
        per_statement = max(1, MAX_PARAMETERS // len(names))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for row in chunk:
                params.extend(adapt(row[name]) for adapt, name in zip(adapters, names, strict=True))
            cursor.execute(insert + ", ".join([row_sql] * len(chunk)) + tail, params)
            written.extend(cursor.fetchall())
        return written


def defaults(model: type[Model], **values: Any) -> dict[str, Any]:
    """A new row of `model` as its field defaults make it (with `values`), keyed by attname, primary key left to the
    database: the base of the rows given to insert(), computed once rather than a model instance a row."""
    instance = model(**values)
    return {field.attname: getattr(instance, field.attname) for field in model._meta.concrete_fields if not field.primary_key}


def insert(model: type[Model], rows: Sequence[dict[str, Any]], *, returning: list[str] | None = None) -> list[tuple]:
    """Insert `rows` (dicts keyed by attname, all with the same keys; every column the table needs, defaults
    included: nothing fills them in) by upsert's route, without its ON CONFLICT — for new rows that can't collide.
    Returns the `returning` columns of every row (in no particular order)."""
    return upsert(model, rows, conflict=[], update=[], returning=returning)


def _copy_upsert(model: type[Model], fields: dict[str, Any], names: list[str], rows: Sequence[dict[str, Any]], tail: str, *, returning: bool
) -> list[tuple]:
    """PostgreSQL: COPY the rows into a temporary table of this session, then move them into the table in one
    statement that also empties the temporary one (so a second call in the same transaction starts clean).

    The temporary table lives as long as the database session (`ON COMMIT DELETE ROWS`, which PostgreSQL skips
    for transactions that did not touch it)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(fields[name].column) for name in names)
    digest = hashlib.sha1(columns.encode()).hexdigest()[:10]
    staging = quote(f"upsert_{model._meta.db_table}_{digest}")
    adapters = [_copy_adapter(fields[name]) for name in names]
    with connection.cursor() as cursor:
        # Made by every call, not remembered: a rollback (of the transaction or of a savepoint) drops a table made
        # inside it, and no Python-side memory can see every rollback. When the table is there this is a catalog
        # lookup (a NOTICE, no write).
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {quote(model._meta.db_table)} WITH NO DATA"
        )
        # The psycopg cursor under Django's wrapper: Django's has no copy().
        with cursor.cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([adapt(row[name]) for adapt, name in zip(adapters, names, strict=True)])
        cursor.execute(
            f"WITH staged AS (DELETE FROM {staging} RETURNING {columns}) "
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT {columns} FROM staged" + tail
        )
        return cursor.fetchall() if returning else []


def update_each(model: type[Model], rows: Sequence[Model], names: Sequence[str]) -> None:
    """Write the fields `names` of each of `rows` by primary key: one `UPDATE … WHERE id = %s` prepared once and run
    for every row (executemany), values prepared by the fields as save() does. `bulk_update` builds a CASE per field
    over every row: SQLite evaluated it row by row (43 s for 10,000 dataset records, bench/datasets.py), and in the
    judging worker Django compiling it took ~15% of the draining thread (py-spy, design note 53)."""
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s"
    params = [[field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields] + [row.pk] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
