"""A JSON column's scalar as plain SQL on SQLite and PostgreSQL: for the Overview's sums and the filter language's
verdict search (`assessment.<judge> = 'no'`)."""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.models import CharField, FloatField, Func, IntegerField


class _JSONScalar(Func):
    """A JSON column's scalar as plain SQL, or NULL when the JSON holds another type. Written out per back end
    because the two store JSON differently (text vs jsonb) and Django's `value=True` on SQLite also matches 1."""

    arity = 1
    sqlite = postgresql = ""  # templates; {x} is the JSON expression

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"{type(self).__name__} is written for SQLite and PostgreSQL only")

    def _render(self, compiler, template: str):
        sql, params = compiler.compile(self.source_expressions[0])
        return template.replace("{x}", sql), list(params) * template.count("{x}")

    def as_sqlite(self, compiler, connection, **extra):
        return self._render(compiler, self.sqlite)

    def as_postgresql(self, compiler, connection, **extra):
        return self._render(compiler, self.postgresql)


class JSONBool(_JSONScalar):
    """1 for JSON true, 0 for JSON false, else NULL: Sum() counts passes, Count() counts yes/no verdicts."""

    output_field = IntegerField()
    sqlite = "(CASE json_type({x}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
    postgresql = "(CASE {x} WHEN 'true'::jsonb THEN 1 WHEN 'false'::jsonb THEN 0 END)"


class JSONNumber(_JSONScalar):
    output_field = FloatField()
    sqlite = "(CASE WHEN json_type({x}) IN ('integer', 'real') THEN CAST({x} AS REAL) END)"
    postgresql = "(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x} #>> '{}')::double precision END)"


class JSONText(_JSONScalar):
    output_field = CharField()
    sqlite = "(CASE WHEN json_type({x}) = 'text' THEN json_extract({x}, '$') END)"
    postgresql = "(CASE WHEN jsonb_typeof({x}) = 'string' THEN {x} #>> '{}' END)"
