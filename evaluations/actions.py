"""Evaluation runs: create one (its rows copy what they evaluate), log the client's predictions as the rows' traces,
start the judging once every row has its trace (or its error), and mark the run done when its job has no work left.

A run's traces are ordinary traces with `Trace.evaluation_run` set (design note 40): automatic evaluation, the
Overview and alerts leave them out. Its judging is a job of manual evaluations whose job id is the run's id
(judges.manual.start_judges_on_traces), at RUN_PRIORITY: behind live work, under the same endpoint limits."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from datasets.records import Errors
from evaluations.inputs import RowIn, RunData, check_gates, read_rows, resolve_judges, run_name
from evaluations.models import EvaluationRun, RunGate, RunRow, RunStatus
from judges.errors import ConfigError
from judges.manual import start_judges_on_traces
from judges.models import RUN_PRIORITY, Evaluation, EvaluationStatus, Judge
from traces import bulk
from traces.actions import ingest_traces
from traces.models import Experiment, Span, Trace
from traces.payload import PayloadError, parse_timestamp, parse_trace_batch

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 10_000
MAX_LATENCY_MS = 86_400_000
PREDICTION_KEYS = ("position", "outputs", "error", "latency_ms", "start_time", "spans")
# A run still predicting this long after it started is given up (its client went away): the sweep cancels it.
ABANDONED_AFTER = timedelta(hours=24)


# --- creating a run --------------------------------------------------------------------------------------------


def run_trace_id(run: EvaluationRun, position: int) -> str:
    return f"run-{run.id.hex}-{position}"


def create_run(
    experiment: Experiment,
    *,
    user=None,
    name: Any = None,
    data: RunData,
    judges: Any,
    gates: Any = None,
    params: Any = None,
    predict: bool = False,
    judge_model: Any = None,
) -> EvaluationRun:
    """Start a run. With `predict` the client will call its predict function on each row and log the results
    (`log_predictions`); without, the records' own outputs (or the historical traces) are judged at once. Raises
    PayloadError naming every field at fault; nothing is written then (not even a built-in judge it would make)."""
    if params is not None and not isinstance(params, dict):
        raise PayloadError([("params", "must be a JSON object (agent version, commit, model, ...)")])
    if not isinstance(predict, bool):
        raise PayloadError([("predict", "must be true (the client calls a predict function) or false (judge the outputs given)")])
    name = run_name(name)
    rows, dataset = read_rows(experiment, data)
    if not predict and data.trace_ids is None and data.filter_string is None and all(row.outputs is None for row in rows):
        raise PayloadError([("records", "no record has outputs to judge; give them 'outputs', or evaluate with a predict function")])
    with transaction.atomic():
        chosen = resolve_judges(experiment, judges, judge_model, user)
        checked_gates = check_gates(gates, chosen)
        run = EvaluationRun.objects.create(
            experiment=experiment,
            dataset=dataset,
            dataset_name=dataset.name if dataset else "",
            name=name,
            judges=[{"judge_id": judge.pk, "name": judge.name, "version": judge.version, "output_type": judge.output_type} for judge in chosen],
            params=params or {},
            row_count=len(rows),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        RunGate.objects.bulk_create(
            RunGate(run=run, judge_name=gate.judge_name, metric=gate.metric, operator=gate.operator, threshold=gate.threshold) for gate in checked_gates
        )
        base = bulk.defaults(RunRow, run=run)  # not bulk_create: preparing every value through the fields (note 55)
        bulk.insert(RunRow, [
            {
                **base,
                "position": position,
                "record_id": row.record.pk if row.record else None,
                "record_version": row.record.version if row.record else None,
                "record_hash": row.record.content_hash if row.record else "",
                "inputs": row.inputs,
                "expectations": row.expectations,
                "outputs": row.outputs,
                "source_trace_id": row.source_trace.trace_id if row.source_trace else "",
            }
            for position, row in enumerate(rows)
        ])
        if not predict:
            _trace_given_outputs(run, rows)
            _start_judging(run)
    logger.info("evaluation run %s (%s): %d rows, judges %s", run.pk, run.name, len(rows), ", ".join(judge.name for judge in chosen))
    return run


def _root_span(run: EvaluationRun, position: int, start: datetime, end: datetime, inputs: Any, outputs: Any, error: str) -> dict[str, Any]:
    return {
        "span_id": f"{run.id.hex[:16]}{position:08x}",
        "name": "predict",
        "span_type": "AGENT",
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "status": "ERROR" if error else "OK",
        "status_message": error[:MAX_ERROR_CHARS],
        "inputs": inputs,
        "outputs": outputs,
    }


def _trace_json(run: EvaluationRun, row: RunRow, *, outputs: Any, error: str, spans: list[dict[str, Any]], start: datetime) -> dict[str, Any]:
    return {
        "trace_id": run_trace_id(run, row.position),
        "name": f"evaluation: {run.name}"[:300],
        "status": "ERROR" if error else "OK",
        "request": row.inputs,
        "response": None if error else outputs,
        "start_time": start.isoformat(),
        # Said outright, so span attributes (session.id, gen_ai.conversation.id, a copied production trace's) can't
        # make a run's trace a turn of a live conversation, which session judges would then judge again.
        "session_id": "",
        "user_id": "",
        "metadata": {"evaluation_run": str(run.id), "evaluation_run_name": run.name[:200], "row": str(row.position)},
        "spans": spans,
    }


def _store_traces(run: EvaluationRun, rows: list[RunRow], traces_json: list[dict[str, Any]], extra_spans: dict[str, list] | None = None) -> None:
    """Ingest the rows' traces (the one ingest path), mark them as this run's with the rows' expectations, link them."""
    batch = parse_trace_batch(traces_json, max_traces=len(traces_json))
    if extra_spans:
        for trace in batch:
            trace.spans.extend(extra_spans.get(trace.trace_id, []))
    result = ingest_traces(run.experiment, batch)
    pk_of = dict(zip(result.trace_ids, result.trace_pks, strict=True))
    stored = []
    for row in rows:
        row.trace_id = pk_of[run_trace_id(run, row.position)]
        stored.append(Trace(pk=row.trace_id, evaluation_run=run.id, expectations=row.expectations or None))
    bulk.update_each(Trace, stored, ["evaluation_run", "expectations"])


def _trace_given_outputs(run: EvaluationRun, rows: list[RowIn]) -> None:
    """No predict function: a trace per row from the record's outputs, or a copy of the historical trace it read
    (with its spans, so judges of retrieval and tool calls see them)."""
    stored_rows = list(RunRow.objects.filter(run=run).order_by("position"))
    now = timezone.now()
    for start in range(0, len(stored_rows), 500):
        chunk = stored_rows[start : start + 500]
        traces_json, copied = [], {}
        for row in chunk:
            source = rows[row.position].source_trace
            if source is None:
                spans = [_root_span(run, row.position, now, now, row.inputs, row.outputs, "")]
                traces_json.append(_trace_json(run, row, outputs=row.outputs, error="", spans=spans, start=now))
            else:
                trace_json = _trace_json(run, row, outputs=source.response, error="", spans=[], start=source.started_at)
                trace_json["status"] = source.status
                copied[trace_json["trace_id"]] = source
                traces_json.append(trace_json)
        extra = {trace_id: _copied_spans(source) for trace_id, source in copied.items()}
        _store_traces(run, chunk, traces_json, extra)
        bulk.update_each(RunRow, chunk, ["trace"])


def _copied_spans(source: Trace):
    from traces.records import STORED_SPAN_FIELDS, SpanIn

    return [SpanIn(**{name: getattr(span, name) for name in STORED_SPAN_FIELDS}) for span in Span.objects.filter(trace=source).order_by("started_at", "pk")]


# --- predictions --------------------------------------------------------------------------------------------------


class RunNotPredicting(ValueError):
    """Predictions arrived for a run that is no longer taking them."""


def _prediction(errors: Errors, path: str, item: Any, row_count: int) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        errors.add(path, "must be an object with 'position' and 'outputs' (or 'error')")
        return None
    for key in sorted(set(item) - set(PREDICTION_KEYS)):
        errors.add(f"{path}.{key}", f"is not a prediction field; use {', '.join(PREDICTION_KEYS)}")
    position = item.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < row_count:
        errors.add(f"{path}.position", f"must be a row's position, 0 to {row_count - 1}")
        return None
    error = item.get("error") or ""
    if not isinstance(error, str):
        errors.add(f"{path}.error", "must be text (what the predict function raised)")
        return None
    latency = item.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= MAX_LATENCY_MS):
        errors.add(f"{path}.latency_ms", f"must be a whole number of milliseconds, 0 to {MAX_LATENCY_MS:,} (a day)")
        return None
    start = None
    if item.get("start_time") is not None:
        try:
            start = parse_timestamp(item["start_time"])
        except ValueError as error:
            errors.add(f"{path}.start_time", str(error))
            return None
    spans = item.get("spans") or []
    if not isinstance(spans, list):
        errors.add(f"{path}.spans", "must be a list of spans (the JSON trace API's shape)")
        return None
    return {
        "position": position,
        "outputs": item.get("outputs"),
        "error": error[:MAX_ERROR_CHARS],
        "latency_ms": latency,
        "start_time": start,
        "spans": spans,
    }


def log_predictions(run: EvaluationRun, predictions: Any) -> int:
    """Record what the client's predict function returned (or raised) for some rows: a trace each (its spans if
    sent, else a root span from the timing), linked to the row. A row may be sent again (a retry): its trace is
    updated, never doubled. Once every row has its trace, the judging starts. Returns how many rows are still
    waiting. PayloadError for bad input (nothing written); RunNotPredicting once the run is judging."""
    if isinstance(predictions, dict) and set(predictions) == {"predictions"}:
        predictions = predictions["predictions"]
    if not isinstance(predictions, list) or not predictions:
        raise PayloadError([("predictions", "must be a non-empty list of {position, outputs | error, latency_ms, start_time, spans}")])
    if len(predictions) > 1000:
        raise PayloadError([("predictions", "at most 1,000 per request")])
    errors = Errors()
    parsed = [_prediction(errors, f"predictions[{index}]", item, run.row_count) for index, item in enumerate(predictions)]
    errors.raise_any()
    by_position = {item["position"]: item for item in parsed if item is not None}
    now = timezone.now()
    with transaction.atomic():
        # Locked (PostgreSQL; SQLite's IMMEDIATE transactions take turns anyway): two posts of the same rows, or a
        # cancel, wait for this one, so a row is queued once and nothing is queued for a cancelled run.
        current = EvaluationRun.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True).first()
        if current != RunStatus.PREDICTING:
            raise RunNotPredicting(f"run {run.name!r} is {current}: it takes no more predictions")
        rows = list(RunRow.objects.filter(run=run, position__in=list(by_position)).order_by("position"))
        traces_json = []
        for row in rows:
            item = by_position[row.position]
            latency = timedelta(milliseconds=item["latency_ms"] or 0)
            start = item["start_time"] or now - latency
            spans = item["spans"] or [_root_span(run, row.position, start, start + latency, row.inputs, item["outputs"], item["error"])]
            traces_json.append(_trace_json(run, row, outputs=item["outputs"], error=item["error"], spans=spans, start=start))
            row.outputs = None if item["error"] else item["outputs"]
            row.error = item["error"] or ""
            row.latency_ms = item["latency_ms"]
        try:
            _store_traces(run, rows, traces_json)
        except PayloadError as error:
            raise PayloadError([(f"predictions{_prediction_path(path, rows)}", message) for path, message in error.errors]) from None
        bulk.update_each(RunRow, rows, ["trace", "outputs", "error", "latency_ms"])  # not bulk_update: its CASEs (note 55)
        # Judged as they arrive, not after the last: a run's wall time is then about the longer of predicting and
        # judging, not their sum. The status moves to judging once every row is in.
        try:
            _queue_rows(run, [row.trace_id for row in rows if not row.error])
        except ConfigError:
            pass  # a judge paused or deleted meanwhile: starting the judging says so (and cancels the run)
    waiting = RunRow.objects.filter(run=run, trace__isnull=True, error="").count()
    if waiting == 0:
        start_judging_when_ready(run)
    return waiting


def _prediction_path(path: str, rows: list[RunRow]) -> str:
    """`traces[3].spans[1]` of the batch sent to ingest, as the client knows it: `[<position>].spans[1]`."""
    if path.startswith("traces[") and "]" in path:
        index, rest = path[len("traces[") :].split("]", 1)
        if index.isdigit() and int(index) < len(rows):
            return f"[position {rows[int(index)].position}]{rest.replace('.spans', '.spans', 1)}"
    return ""


# --- judging and finishing ----------------------------------------------------------------------------------------


def _run_judges(run: EvaluationRun) -> list[Judge]:
    judge_ids = [entry["judge_id"] for entry in run.judges]
    judges = list(Judge.objects.filter(pk__in=judge_ids).select_related("endpoint"))
    missing = [entry["name"] for entry in run.judges if entry["judge_id"] not in {judge.pk for judge in judges}]
    if missing:
        raise ConfigError({"judges": f"judge {', '.join(missing)} was deleted after the run started"})
    return sorted(judges, key=lambda judge: judge_ids.index(judge.pk))


def _queue_rows(run: EvaluationRun, trace_pks: list[int]) -> int:
    """Inside the transaction: the run's judges on these rows' traces, as the job run.id, unless already queued (a
    re-sent prediction is not judged twice). Returns how many traces were queued."""
    if not trace_pks:
        return 0
    queued = set(Evaluation.objects.filter(job=run.pk, trace_id__in=trace_pks).values_list("trace_id", flat=True))
    fresh = [pk for pk in trace_pks if pk not in queued]
    if fresh:
        start_judges_on_traces(_run_judges(run), fresh, job=run.id, priority=RUN_PRIORITY)
    return len(fresh)


def _start_judging(run: EvaluationRun) -> None:
    """Inside the transaction: every row has its trace or error. Queue whatever rows aren't yet; the run is judging,
    or done at once when there is nothing to judge (every prediction failed) or nothing left."""
    trace_pks = list(RunRow.objects.filter(run=run, trace__isnull=False, error="").order_by("position").values_list("trace_id", flat=True))
    _queue_rows(run, trace_pks)
    now = timezone.now()
    has_work = Evaluation.objects.filter(job=run.pk).exists()
    status = RunStatus.JUDGING if has_work else RunStatus.DONE
    EvaluationRun.objects.filter(pk=run.pk).update(status=status, judging_started_at=now, finished_at=None if has_work else now)
    run.status, run.judging_started_at = status, now
    if has_work:  # the rows queued while predicting may all be judged already: nothing else would say so
        # robust: the run is committed; a failure here must not turn the answer into an error a client would retry
        # (making a second run). The every-minute check finishes it instead.
        transaction.on_commit(lambda: finish_if_judged(run.pk), robust=True)


def start_judging_when_ready(run: EvaluationRun) -> bool:
    """Every row has its trace or its error: move the run from predicting to judging (once, whoever gets here
    first — checked after the rows' commits, so the last of two concurrent loggers always sees both)."""
    with transaction.atomic():
        claimed = EvaluationRun.objects.filter(pk=run.pk, status=RunStatus.PREDICTING).update(status=RunStatus.JUDGING)
        if not claimed:
            return False
        if RunRow.objects.filter(run=run, trace__isnull=True, error="").exists():
            transaction.set_rollback(True)
            return False
        run.refresh_from_db()
        try:
            _start_judging(run)
        except ConfigError as error:
            EvaluationRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now(), params={**run.params, "cancelled": str(error)})
            logger.warning("evaluation run %s cancelled: %s", run.pk, error)
    return True


def finish_if_judged(run_id: uuid.UUID | str) -> bool:
    """Mark a judging run done when its job has nothing pending or running. Idempotent; True when this call did."""
    if Evaluation.objects.filter(job=run_id, status__in=(EvaluationStatus.PENDING, EvaluationStatus.RUNNING)).exists():
        return False
    return bool(EvaluationRun.objects.filter(pk=run_id, status=RunStatus.JUDGING).update(status=RunStatus.DONE, finished_at=timezone.now()))


def finish_runs(now: datetime | None = None) -> dict[str, int]:
    """The every-minute check: judging runs whose work is all settled are done (what a worker's finishing step
    missed: an evaluation abandoned by the sweep); predicting runs nobody logged to for ABANDONED_AFTER (since they
    started or since their last prediction) are cancelled, with their queued judging work."""
    now = now or timezone.now()
    finished = sum(finish_if_judged(run_id) for run_id in EvaluationRun.objects.filter(status=RunStatus.JUDGING).values_list("pk", flat=True))
    cancelled = 0
    for run in EvaluationRun.objects.filter(status=RunStatus.PREDICTING, created_at__lt=now - ABANDONED_AFTER):
        last = Trace.objects.filter(evaluation_run=run.id).aggregate(last=Max("updated_at"))["last"]
        if last is None or last < now - ABANDONED_AFTER:
            cancelled += cancel_run(run)
    return {"finished": finished, "cancelled": cancelled}


def cancel_run(run: EvaluationRun) -> bool:
    """Stop a run: predictions are refused and its pending judging work is cancelled."""
    with transaction.atomic():
        stopped = EvaluationRun.objects.filter(pk=run.pk, status__in=(RunStatus.PREDICTING, RunStatus.JUDGING)).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
        Evaluation.objects.filter(job=run.pk, status=EvaluationStatus.PENDING).update(status=EvaluationStatus.CANCELLED, finished_at=timezone.now())
    return bool(stopped)
