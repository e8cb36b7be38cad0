"""Which traces and sessions a judge should judge, and why not. The same decisions serve the engine (creating
evaluations) and the UI/API ("why was this trace not judged?")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from judges.models import Judge
from traces import filters
from traces.models import Session, Trace, TraceStatus

logger = logging.getLogger("judges.decisions")

SELECTED = "selected"
JUDGE_OFF = "judge_off"
IN_PROGRESS = "in_progress"
TOO_OLD = "too_old"
FILTERED_OUT = "filtered_out"
SAMPLED_OUT = "sampled_out"
WAITING_FOR_IDLE = "waiting_for_idle"


@lru_cache(maxsize=512)
def parsed_filter(text: str):
    return filters.parse(text) if text.strip() else None


def filter_uses_spans(text: str) -> bool:
    return "span." in text


def trace_record(trace: Trace, spans: list[tuple[str, str]] | None = None) -> filters.FilterRecord:
    return filters.FilterRecord(
        status=trace.status,
        name=trace.name,
        duration_ms=trace.duration_ms,
        started_at=trace.started_at,
        session_id=trace.session_id,
        user_id=trace.user_id,
        metadata=dict(trace.metadata or {}),
        tags=dict(trace.tags or {}),
        spans=spans if spans is not None else [(span.span_type, span.name) for span in trace.spans.all()],
    )


@dataclass
class Decision:
    code: str
    detail: str = ""


def decide_trace(judge: Judge, trace: Trace, record: filters.FilterRecord | Any) -> Decision:
    """For a trace-scope judge. `record` may be a callable producing the FilterRecord (spans loaded lazily)."""
    if not judge.active:
        decision = Decision(JUDGE_OFF, "automatic evaluation is off for this judge")
    elif trace.status == TraceStatus.IN_PROGRESS:
        decision = Decision(IN_PROGRESS, "the trace is still in progress (its root span has not arrived)")
    elif judge.lookback_start() and trace.created_at < judge.lookback_start():
        decision = Decision(TOO_OLD, "logged more than an hour before the judge was switched on")
    elif judge.filter_string and not filters.matches(parsed_filter(judge.filter_string), record() if callable(record) else record):
        decision = Decision(FILTERED_OUT, f"does not match the filter {judge.filter_string}")
    elif not judge.should_sample(trace.trace_id):
        decision = Decision(SAMPLED_OUT, f"not in the {judge.sample_rate:.0%} sample")
    else:
        decision = Decision(SELECTED)
    logger.debug("judge %s, trace %s: %s", judge.name, trace.trace_id, decision.code)
    return decision


def decide_session(judge: Judge, session: Session, first_trace: Trace | None, now) -> Decision:
    if not judge.active:
        decision = Decision(JUDGE_OFF, "automatic evaluation is off for this judge")
    elif judge.lookback_start() and session.last_ingested_at < judge.lookback_start():
        decision = Decision(TOO_OLD, "its last turn was logged more than an hour before the judge was switched on")
    elif (now - session.last_ingested_at).total_seconds() < judge.idle_seconds():
        remaining = judge.idle_seconds() - int((now - session.last_ingested_at).total_seconds())
        decision = Decision(WAITING_FOR_IDLE, f"waiting for the conversation to go idle ({remaining} s left)")
    elif judge.filter_string and (first_trace is None or not filters.matches(parsed_filter(judge.filter_string), trace_record(first_trace))):
        decision = Decision(FILTERED_OUT, f"its first trace does not match the filter {judge.filter_string}")
    elif not judge.should_sample(session.session_id):
        decision = Decision(SAMPLED_OUT, f"not in the {judge.sample_rate:.0%} sample")
    else:
        decision = Decision(SELECTED)
    logger.debug("judge %s, session %s: %s", judge.name, session.session_id, decision.code)
    return decision

