"""bench/pages.py's data: an experiment of N traces (5 spans each) over 30 days in S sessions, 4 trace judges and 1
session judge, every trace and session judged (2% errors), written straight into the tables in bulk — PostgreSQL's
COPY, SQLite's executemany of one prepared statement, one transaction per table — not through the ingest path
(this measures reading). Row ids are given here (so spans, verdicts and evaluations point at their trace without a
read back) and the sequences are moved past them afterwards.

Sessions are contiguous runs of turns (trace n is turn n % turns of session n // turns, turns = N / S): 100,000
traces in 20,000 sessions are five-turn conversations; 1,000,000 in 2,000 (issue 15) are 500-turn ones, each
over about 22 minutes."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

TRACE_JUDGES = (
    ("relevance", "boolean", []),
    ("safety", "boolean", []),
    ("tone", "categorical", ["polite", "neutral", "rude"]),
    ("quality", "integer", []),
)
SESSION_JUDGE = ("frustration", "categorical", ["none", "some", "high"])
SPANS = (("agent", "AGENT", ""), ("retrieve", "RETRIEVER", "s0"), ("rerank", "RERANKER", "s0"), ("generate", "LLM", "s0"), ("lookup_order", "TOOL", "s3"))
ENVIRONMENTS = ("production", "production", "staging")
CUSTOMERS = 500  # metadata.customer: one of 500, so a customer's traces are 0.2% of all


def value_for(rng: random.Random, output_type: str, categories: list[str]):
    if output_type == "boolean":
        return rng.random() < 0.85
    if output_type == "categorical":
        return rng.choices(categories, weights=[70, 25, 5])[0]
    return rng.randint(1, 5)


class Writer:
    """Writes rows of one model: the given columns per row, every other column its field's default."""

    def __init__(self, model, columns: list[str]):
        from django.db import connection

        self.model = model
        self.vendor = connection.vendor
        fields = [field for field in model._meta.concrete_fields]
        by_name = {field.attname: field for field in fields}
        self.columns = [by_name[name].column for name in columns]
        self.constants: tuple = ()
        for field in fields:
            if field.attname not in columns:
                self.columns.append(field.column)
                self.constants += (self.db_value(field, field.get_default()),)

    def db_value(self, field, value):
        if value is None:
            return None
        internal = field.get_internal_type()
        if internal == "JSONField":
            return json.dumps(value)
        if internal == "DateTimeField":
            return self.time(value)
        if internal == "DecimalField":
            return str(value)
        return value

    def time(self, moment: datetime):
        """A datetime as the database column takes it: as is for COPY, naive UTC text for SQLite (as Django stores)."""
        return moment if self.vendor == "postgresql" else str(moment.replace(tzinfo=None))

    def write(self, rows: Iterable[tuple]) -> int:
        from django.db import connection, transaction

        quote = connection.ops.quote_name
        table, columns = quote(self.model._meta.db_table), ", ".join(quote(column) for column in self.columns)
        full = (row + self.constants for row in rows)
        count = 0
        with transaction.atomic(), connection.cursor() as cursor, _without_indexes(cursor, self.model._meta.db_table):
            if self.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in full:
                        copy.write_row(row)
                        count += 1
            else:
                counted = _counting(full)
                placeholders = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", counted)
                count = counted.count
        return count


@contextmanager
def _without_indexes(cursor, table: str):
    """The table's secondary indexes and constraints (but its primary key and checks) dropped while rows go in, and
    made again after: one sort per index instead of a B-tree insert per row, and one join per foreign key instead
    of a check per row. What pg_restore does."""
    if cursor.db.vendor == "postgresql":
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass AND c.contype IN ('p', 'u'))",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        yield
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    else:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table])
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        yield
        for _, definition in indexes:
            cursor.execute(definition)


class _counting:
    def __init__(self, rows: Iterator[tuple]):
        self.rows, self.count = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.count += 1
            yield row


def _timed(label: str, write: Callable[[], int]) -> None:
    began = time.monotonic()
    count = write()
    seconds = time.monotonic() - began
    print(f"  {label:<24} {count:>10,} rows in {seconds:6.1f} s ({count / max(seconds, 1e-9):,.0f}/s)", flush=True)


def populate(traces: int, sessions: int) -> tuple[int, str]:
    """Writes the experiment; returns its id and the trace id of a trace in the middle."""
    from django.db import connection
    from django.utils import timezone

    from judges.models import Evaluation, Judge, JudgeVersion, ModelEndpoint
    from traces.models import Assessment, Experiment, Session, Span, Trace

    if traces % sessions:
        raise SystemExit(f"--traces {traces} is not a whole number of turns in --sessions {sessions}")
    turns = traces // sessions
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=30)
    step = (now - start) / traces
    endpoint = ModelEndpoint.objects.create(name="bench", model="openai/bench", api_base="http://127.0.0.1:9/v1")
    experiment = Experiment.objects.create(name="bench-pages")
    judges = [
        Judge.objects.create(
            experiment=experiment, name=name, instructions="Is {{ outputs }} fine?", output_type=output_type, categories=categories,
            endpoint=endpoint, active=True, enabled_at=start, created_at=start,
        )
        for name, output_type, categories in TRACE_JUDGES
    ]
    name, output_type, categories = SESSION_JUDGE
    session_judge = Judge.objects.create(
        experiment=experiment, name=name, scope="session", builtin_key="UserFrustration", output_type=output_type, categories=categories,
        endpoint=endpoint, active=True, enabled_at=start, created_at=start,
    )
    for judge in [*judges, session_judge]:
        JudgeVersion.objects.create(judge=judge, version=1, config={}, created_at=start)

    def at(n: int) -> datetime:
        return start + step * n

    print(f"writing {traces:,} traces ({len(SPANS)} spans each), {sessions:,} sessions of {turns} turns and their verdicts ...", flush=True)
    began = time.monotonic()
    _timed("traces", lambda: _traces(Writer(Trace, TRACE_COLUMNS), experiment.pk, traces, turns, at))
    _timed("spans", lambda: _spans(Writer(Span, SPAN_COLUMNS), traces, at))
    _timed("sessions", lambda: _sessions(Writer(Session, SESSION_COLUMNS), experiment.pk, sessions, turns, at))
    _timed("assessments", lambda: _assessments(Writer(Assessment, ASSESSMENT_COLUMNS), traces, sessions, turns, at))
    _timed("evaluations", lambda: _evaluations(Writer(Evaluation, EVALUATION_COLUMNS), [j.pk for j in judges], session_judge.pk, traces, sessions, turns, at))
    _reset_sequences([Trace, Span, Session, Assessment, Evaluation])
    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk load: the planner's row counts, and the visibility map that lets
        # index-only scans skip the heap.
        vacuumed = time.monotonic()
        with connection.cursor() as cursor:
            for model in (Trace, Span, Session, Assessment, Evaluation):
                cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")
        print(f"  VACUUM ANALYZE in {time.monotonic() - vacuumed:.0f} s", flush=True)
    print(f"data written in {time.monotonic() - began:.0f} s", flush=True)
    return experiment.pk, f"bench-{traces // 2:07d}"


TRACE_COLUMNS = [
    "id", "trace_id", "experiment_id", "name", "status", "started_at", "ended_at", "duration_ms", "request", "response",
    "request_preview", "response_preview", "metadata", "session_id", "user_id", "input_tokens", "output_tokens",
    "total_tokens", "span_count", "created_at", "updated_at",
]


def _traces(writer: Writer, experiment_id: int, count: int, turns: int, at) -> int:
    rng = random.Random(7)
    time_of = writer.time

    def rows():
        for n in range(count):
            started = at(n)
            moment = time_of(started)
            question, answer = f"question {n} about my order", f"answer {n}: your order ships tomorrow"
            session = n // turns
            metadata = {"environment": rng.choice(ENVIRONMENTS), "customer": f"c-{rng.randrange(CUSTOMERS):03d}"}
            yield (
                n + 1, f"bench-{n:07d}", experiment_id, "agent", "ERROR" if rng.random() < 0.03 else "OK", moment,
                time_of(started + timedelta(milliseconds=900)), rng.randint(300, 4000),
                json.dumps({"messages": [{"role": "user", "content": question}]}), json.dumps({"content": answer}),
                question, answer, json.dumps(metadata), f"s-{session:06d}", f"user-{session % 997}", 120, 40, 160,
                len(SPANS), moment, moment,
            )

    return writer.write(rows())


SPAN_COLUMNS = ["id", "trace_id", "span_id", "parent_span_id", "name", "span_type", "started_at", "ended_at", "status", "inputs", "outputs", "attributes"]


def _spans(writer: Writer, count: int, at) -> int:
    time_of = writer.time
    attributes = json.dumps({"llm.model": "bench-model", "llm.token_count.total": 160})

    def rows():
        for n in range(count):
            started = at(n)
            for k, (name, kind, parent) in enumerate(SPANS):
                yield (
                    n * len(SPANS) + k + 1, n + 1, f"s{k}", parent, name, kind, time_of(started + timedelta(milliseconds=100 * k)),
                    time_of(started + timedelta(milliseconds=100 * k + 90)), "OK", f'{{"query": "question {n}"}}',
                    f'{{"result": "step {k} of {n}"}}', attributes,
                )

    return writer.write(rows())


SESSION_COLUMNS = ["id", "experiment_id", "session_id", "user_id", "first_trace_at", "last_trace_at", "trace_count", "last_ingested_at"]


def _sessions(writer: Writer, experiment_id: int, count: int, turns: int, at) -> int:
    time_of = writer.time
    rows = (
        (s + 1, experiment_id, f"s-{s:06d}", f"user-{s % 997}", time_of(at(s * turns)), time_of(at(s * turns + turns - 1)), turns, time_of(at(s * turns + turns - 1)))
        for s in range(count)
    )
    return writer.write(rows)


ASSESSMENT_COLUMNS = [
    "id", "trace_id", "session_id", "name", "value", "rationale", "source_type", "judge_name", "judge_version", "model",
    "error_code", "error_message", "cost_usd", "input_tokens", "output_tokens", "latency_ms", "created_at",
]


def _assessment_id(n: int, j: int) -> int:
    """Trace n's verdict by trace judge j (session s's verdict: after all of theirs)."""
    return n * len(TRACE_JUDGES) + j + 1


def _failed(rng: random.Random) -> bool:
    return rng.random() < 0.02


def _assessments(writer: Writer, traces: int, sessions: int, turns: int, at) -> int:
    rng = random.Random(11)
    time_of = writer.time
    json_of = {value: json.dumps(value) for value in [True, False, 1, 2, 3, 4, 5, *TRACE_JUDGES[2][2], *SESSION_JUDGE[2]]}

    def rows():
        for n in range(traces):
            moment = time_of(at(n) + timedelta(seconds=2))
            for j, (name, output_type, categories) in enumerate(TRACE_JUDGES):
                if _failed(rng):
                    yield (_assessment_id(n, j), n + 1, None, name, None, "", "LLM_JUDGE", name, 1, "openai/bench", "timeout",
                           "no answer in 30 s", "0.00012", 400, 0, 30000, moment)
                else:
                    yield (_assessment_id(n, j), n + 1, None, name, json_of[value_for(rng, output_type, categories)],
                           "The answer addresses the question.", "LLM_JUDGE", name, 1, "openai/bench", "", "", "0.00012", 400, 60, 800, moment)
        name, _, categories = SESSION_JUDGE
        for s in range(sessions):
            moment = time_of(at(s * turns + turns - 1) + timedelta(minutes=5))
            yield (_assessment_id(traces, s), None, s + 1, name, json_of[value_for(rng, "categorical", categories)],
                   "The user got what they asked for.", "LLM_JUDGE", name, 1, "openai/bench", "", "", "0.0003", 900, 60, 1200, moment)

    return writer.write(rows())


EVALUATION_COLUMNS = [
    "id", "judge_id", "judge_version", "trace_id", "session_id", "session_generation", "status", "attempts", "assessment_id",
    "error_code", "cost_usd", "created_at", "started_at", "finished_at",
]


def _evaluations(writer: Writer, judge_ids: list[int], session_judge_id: int, traces: int, sessions: int, turns: int, at) -> int:
    rng = random.Random(11)  # the assessments' draws, in the same order: the same ones failed
    time_of = writer.time

    def rows():
        for n in range(traces):
            moment = time_of(at(n) + timedelta(seconds=2))
            for j, (_, output_type, categories) in enumerate(TRACE_JUDGES):
                failed = _failed(rng)
                if not failed:
                    value_for(rng, output_type, categories)
                yield (_assessment_id(n, j), judge_ids[j], 1, n + 1, None, 0, "error" if failed else "done", 1, _assessment_id(n, j),
                       "timeout" if failed else "", "0.00012", moment, moment, moment)
        for s in range(sessions):
            moment = time_of(at(s * turns + turns - 1) + timedelta(minutes=5))
            assessment = _assessment_id(traces, s)
            yield (assessment, session_judge_id, 1, None, s + 1, turns, "done", 1, assessment, "", "0.0003", moment, moment, moment)

    return writer.write(rows())


def _reset_sequences(models: list) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
