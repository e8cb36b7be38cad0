"""Traces with their judges' verdicts as CSV or JSONL, streamed in keyset chunks: memory stays bounded however many
traces match (a chunk of traces and their verdicts at a time), newest first like the Traces tab.

One column group per trace judge: `<judge>.value`, `<judge>.rationale`, `<judge>.version`, `<judge>.error` — the
judge's latest valid verdict. The UI's export (evalapp.ui.traces) and the API's (evalapp.export_api) share this."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q, QuerySet

from traces.models import Assessment, AssessmentSource, Trace

CHUNK = 500
TRACE_COLUMNS = (
    "trace_id", "name", "status", "started_at", "duration_ms", "session_id", "user_id", "total_tokens", "request_preview", "response_preview",
)
JUDGE_COLUMNS = ("value", "rationale", "version", "error")
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _chunks(traces: QuerySet[Trace]) -> Iterator[list[Trace]]:
    ordered = traces.order_by("-started_at", "-pk").only("pk", *TRACE_COLUMNS)
    last: Trace | None = None
    while True:
        page = ordered if last is None else ordered.filter(Q(started_at__lt=last.started_at) | Q(started_at=last.started_at, pk__lt=last.pk))
        chunk = list(page[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def rows(traces: QuerySet[Trace], judge_names: list[str]) -> Iterator[dict[str, Any]]:
    """One dict per trace: its fields, and per judge the latest valid verdict (or None)."""
    for chunk in _chunks(traces):
        verdicts: dict[tuple[int, str], Assessment] = {}
        for assessment in (
            Assessment.objects.filter(trace_id__in=[t.pk for t in chunk], name__in=judge_names, source_type=AssessmentSource.LLM_JUDGE, valid=True)
            .order_by("-created_at", "-pk")
            .only("trace_id", "name", "value", "rationale", "judge_version", "error_code", "error_message", "created_at")
        ):
            verdicts.setdefault((assessment.trace_id, assessment.name), assessment)
        for trace in chunk:
            row: dict[str, Any] = {column: getattr(trace, column) for column in TRACE_COLUMNS}
            row["started_at"] = trace.started_at.isoformat()
            row["judges"] = {}
            for name in judge_names:
                found = verdicts.get((trace.pk, name))
                row["judges"][name] = None if found is None else {
                    "value": found.value,
                    "rationale": found.rationale,
                    "version": found.judge_version,
                    "error": f"{found.error_code}: {found.error_message}" if found.error_code else None,
                }
            yield row


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet won't run: text starting like a formula is quoted with a leading apostrophe."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Line:
    """A file-like object csv.writer writes one line into, for streaming."""

    def write(self, text: str) -> str:
        return text


def as_csv(rows: Iterable[dict[str, Any]], judge_names: list[str]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow([*TRACE_COLUMNS, *(f"{name}.{column}" for name in judge_names for column in JUDGE_COLUMNS)])
    for row in rows:
        cells = [_cell(row[column]) for column in TRACE_COLUMNS]
        for name in judge_names:
            verdict = row["judges"][name] or {}
            cells += [_cell(verdict.get(column)) for column in JUDGE_COLUMNS]
        yield writer.writerow(cells)


def as_jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, default=str) + "\n"


def stream(traces: QuerySet[Trace], judge_names: list[str], export_format: str) -> Iterator[str]:
    found = rows(traces, judge_names)
    return as_csv(found, judge_names) if export_format == "csv" else as_jsonl(found)
