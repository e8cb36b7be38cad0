"""Evaluation runs: create one (its rows copy what they evaluate), log the client's predictions as the rows' traces,
start the judging once every row has its trace (or its error), and mark the run done when its job has no work left.

A run's traces are ordinary traces with `Trace.evaluation_run` set (design note 40): automatic evaluation, the
Overview and alerts leave them out. Its judging is a job of manual evaluations whose job id is the run's id
(judges.manual.start_judges_on_traces), at RUN_PRIORITY: behind live work, under the same endpoint limits."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from datasets.actions import TraceSelection, record_from_trace, select_traces
from datasets.models import Dataset, DatasetRecord
from datasets.records import MAX_RECORDS_PER_MERGE, Errors, check_expectations, check_inputs
from evaluations import gates as gate_rules
from evaluations.models import EvaluationRun, RunGate, RunRow, RunStatus
from judges.actions import create_judge
from judges.catalog import BUILTIN_JUDGES
from judges.errors import ConfigError
from judges.manual import start_judges_on_traces
from judges.models import RUN_PRIORITY, Evaluation, EvaluationStatus, Judge, ModelEndpoint, Scope
from traces.actions import ingest_traces
from traces.models import Experiment, Span, Trace, TraceStatus
from traces.payload import PayloadError, parse_timestamp, parse_trace_batch

logger = logging.getLogger(__name__)

MAX_ROWS = MAX_RECORDS_PER_MERGE
MAX_JUDGES = 20
MAX_ERROR_CHARS = 10_000
MAX_NAME_CHARS = 200
MAX_LATENCY_MS = 86_400_000
RUN_FIELDS = ("name", "dataset", "records", "trace_ids", "filter_string", "judges", "gates", "params", "predict", "judge_model")
PREDICTION_KEYS = ("position", "outputs", "error", "latency_ms", "start_time", "spans")
# A run still predicting this long after it started is given up (its client went away): the sweep cancels it.
ABANDONED_AFTER = timedelta(hours=24)


@dataclass
class RunData:
    """What a run evaluates: exactly one of a dataset (by id or name), records given inline, or existing traces."""

    dataset: Any = None
    records: Any = None
    trace_ids: Any = None
    filter_string: Any = None


@dataclass
class _Row:
    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    record: DatasetRecord | None = None
    source_trace: Trace | None = None


def _name(value: Any) -> str:
    if value is None or value == "":
        return f"run {timezone.now():%Y-%m-%d %H:%M:%S}"
    if not isinstance(value, str) or len(value.strip()) > MAX_NAME_CHARS:
        raise PayloadError([("name", f"must be text of at most {MAX_NAME_CHARS} characters")])
    return value.strip()


# --- what the run reads -----------------------------------------------------------------------------------------


def _dataset(experiment: Experiment, ref: Any) -> Dataset:
    datasets = Dataset.objects.filter(experiment=experiment)
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = datasets.filter(pk=ref).first()
    elif isinstance(ref, str) and ref.strip():
        found = datasets.filter(name=ref.strip()).first()
    else:
        raise PayloadError([("dataset", "must be a dataset's id (a number) or its name")])
    if found is None:
        names = ", ".join(repr(name) for name in datasets.order_by("name").values_list("name", flat=True)[:10]) or "none yet"
        raise PayloadError([("dataset", f"no dataset {ref!r} in experiment {experiment.name!r} (deleted?); its datasets: {names}")])
    return found


def _dataset_rows(dataset: Dataset) -> list[_Row]:
    records = list(DatasetRecord.objects.filter(dataset=dataset).order_by("created_at", "pk")[: MAX_ROWS + 1])
    if not records:
        raise PayloadError([("dataset", f"dataset {dataset.name!r} has no records; add some first")])
    if len(records) > MAX_ROWS:
        raise PayloadError([("dataset", f"dataset {dataset.name!r} has more than {MAX_ROWS:,} records; a run reads at most that many")])
    return [_Row(record.inputs, dict(record.expectations or {}), record.outputs, record=record) for record in records]


def _inline_rows(records: Any) -> list[_Row]:
    """Records as MLflow's evaluate takes them: {inputs, expectations?, outputs?} (tags are a dataset's business)."""
    if not isinstance(records, list):
        raise PayloadError([("records", "must be a list of {\"inputs\": {...}, \"expectations\": {...}, \"outputs\": ...}")])
    if not records:
        raise PayloadError([("records", "is empty; give at least one record")])
    if len(records) > MAX_ROWS:
        raise PayloadError([("records", f"holds {len(records):,} records; a run reads at most {MAX_ROWS:,}")])
    errors = Errors()
    rows: list[_Row] = []
    for index, item in enumerate(records):
        path = f"records[{index}]"
        if not isinstance(item, dict):
            errors.add(path, "must be an object with 'inputs'")
            continue
        for key in sorted(set(item) - {"inputs", "expectations", "outputs", "tags"}):
            errors.add(f"{path}.{key}", "is not a record field; use inputs, expectations, outputs")
        if "inputs" not in item:
            errors.add(f"{path}.inputs", "is required: a JSON object of what the application is called with")
            continue
        inputs = check_inputs(errors, f"{path}.inputs", item["inputs"])
        expectations = check_expectations(errors, f"{path}.expectations", item.get("expectations", {}))
        if inputs is not None and expectations is not None:
            rows.append(_Row(inputs, expectations, item.get("outputs")))
    errors.raise_any()
    return rows


def _trace_rows(experiment: Experiment, trace_ids: Any, filter_string: Any) -> list[_Row]:
    if trace_ids is not None and (not isinstance(trace_ids, list) or not all(isinstance(item, str) and item for item in trace_ids)):
        raise PayloadError([("trace_ids", "must be a list of trace ids")])
    if filter_string is not None and not isinstance(filter_string, str):
        raise PayloadError([("filter_string", 'must be text in the trace filter language ("" for every trace)')])
    if trace_ids is not None and not trace_ids:
        raise PayloadError([("trace_ids", "is empty; give at least one trace id")])
    traces = select_traces(experiment, TraceSelection(trace_ids=tuple(trace_ids or ()), filter_string=filter_string or ""))
    traces = traces.filter(evaluation_run__isnull=True).exclude(status=TraceStatus.IN_PROGRESS)
    found = list(traces.order_by("started_at", "pk")[: MAX_ROWS + 1])
    field_name = "trace_ids" if trace_ids is not None else "filter_string"
    if not found:
        raise PayloadError([(field_name, "selects no finished trace of this experiment (evaluation runs' own traces are not evaluated again)")])
    if len(found) > MAX_ROWS:
        raise PayloadError([(field_name, f"selects more than {MAX_ROWS:,} traces; narrow it")])
    rows = []
    for trace in found:
        record = record_from_trace(trace)
        inputs = record.inputs if record is not None else {}
        rows.append(_Row(inputs, {}, trace.response, source_trace=trace))
    return rows


def _rows(experiment: Experiment, data: RunData) -> tuple[list[_Row], Dataset | None]:
    given = [name for name in ("dataset", "records", "trace_ids", "filter_string") if getattr(data, name) is not None]
    if not given or (len(given) > 1 and set(given) != {"trace_ids", "filter_string"}):
        raise PayloadError(
            [("", "give exactly one of 'dataset' (id or name), 'records' (a list), or 'trace_ids' / 'filter_string' (existing traces)")]
        )
    if data.dataset is not None:
        dataset = _dataset(experiment, data.dataset)
        return _dataset_rows(dataset), dataset
    if data.records is not None:
        return _inline_rows(data.records), None
    return _trace_rows(experiment, data.trace_ids, data.filter_string), None


# --- which judges ----------------------------------------------------------------------------------------------


def builtin_for(name: str):
    """The built-in judge a name means: its key (`Correctness`, any case) or its default name (`correctness`)."""
    folded = name.strip().lower()
    for builtin in BUILTIN_JUDGES.values():
        if builtin.scope == Scope.TRACE and folded in (builtin.key.lower(), builtin.default_name):
            return builtin
    return None


def _endpoint(experiment: Experiment, ref: Any, builtin_label: str) -> ModelEndpoint:
    """The endpoint that judges a built-in made for a run: the one named, else the one the experiment's judges use
    (its latest judge's), else the only endpoint there is."""
    if ref not in (None, ""):
        endpoints = ModelEndpoint.objects.all()
        found = endpoints.filter(pk=ref).first() if isinstance(ref, int) and not isinstance(ref, bool) else endpoints.filter(name=ref).first()
        if found is None:
            raise PayloadError([("judge_model", f"no model endpoint {ref!r}")])
        return found
    latest = Judge.objects.filter(experiment=experiment).select_related("endpoint").order_by("-created_at", "-pk").first()
    if latest is not None:
        return latest.endpoint
    endpoints = list(ModelEndpoint.objects.all()[:2])
    if len(endpoints) == 1:
        return endpoints[0]
    raise PayloadError([("judge_model", f"say which model endpoint judges the built-in {builtin_label} (its name or id)")])


def _judges(experiment: Experiment, names: Any, judge_model: Any, user) -> list[Judge]:
    """The run's judges by name: the experiment's own first; else a built-in's name, which reuses (or creates, with
    automatic evaluation off) the experiment's judge of that built-in under its default name."""
    if not isinstance(names, list) or not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise PayloadError([("judges", "must be a non-empty list of judge names (the experiment's judges, or built-ins such as 'Correctness')")])
    if len(names) > MAX_JUDGES:
        raise PayloadError([("judges", f"at most {MAX_JUDGES} judges per run")])
    own = {judge.name: judge for judge in Judge.objects.filter(experiment=experiment).select_related("endpoint")}
    chosen: list[Judge] = []
    errors = Errors()
    for index, raw in enumerate(names):
        name = raw.strip()
        judge = own.get(name)
        builtin = builtin_for(name) if judge is None else None
        if judge is None and builtin is not None:
            judge = own.get(builtin.default_name)
            if judge is not None and judge.builtin_key != builtin.key:
                errors.add(f"judges[{index}]", f"{name!r} means the built-in {builtin.label}, but this experiment's judge {judge.name!r} is another judge")
                continue
            if judge is None:
                judge = create_judge(
                    experiment,
                    user=user,
                    guidelines_optional=True,
                    name=builtin.default_name,
                    builtin_key=builtin.key,
                    endpoint=_endpoint(experiment, judge_model, builtin.label),
                    active=False,
                )
                own[judge.name] = judge
        if judge is None:
            known = ", ".join(sorted(own)) or "none yet"
            builtins = ", ".join(builtin.key for builtin in BUILTIN_JUDGES.values() if builtin.scope == Scope.TRACE)
            errors.add(f"judges[{index}]", f"no judge {name!r} in experiment {experiment.name!r} (deleted?); its judges: {known}; built-ins: {builtins}")
        elif judge.scope != Scope.TRACE:
            errors.add(f"judges[{index}]", f"{judge.name} judges whole conversations; an evaluation run judges single traces")
        elif judge.is_paused:
            errors.add(f"judges[{index}]", f"{judge.name} is paused: {judge.paused_reason}")
        elif judge in chosen:
            errors.add(f"judges[{index}]", f"{judge.name} is named twice")
        else:
            chosen.append(judge)
    errors.raise_any()
    return chosen


def _gates(raw: Any, judges: list[Judge]) -> list[gate_rules.GateIn]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PayloadError([("gates", 'must be a list of gates like "correctness>=0.9"')])
    by_name = {judge.name: judge for judge in judges}
    checked: list[gate_rules.GateIn] = []
    errors = Errors()
    for index, item in enumerate(raw):
        try:
            gate = gate_rules.parse_gate(item)
            judge = by_name.get(gate.judge_name)
            if judge is None and (builtin := builtin_for(gate.judge_name)) is not None:
                judge = by_name.get(builtin.default_name)
            if judge is None:
                raise gate_rules.GateError(f"{gate.judge_name!r} is not one of this run's judges ({', '.join(by_name)})")
            gate = gate_rules.check_gate(gate_rules.GateIn(judge.name, gate.metric, gate.operator, gate.threshold), judge.output_type)
        except gate_rules.GateError as error:
            errors.add(f"gates[{index}]", str(error))
            continue
        if any((other.judge_name, other.metric) == (gate.judge_name, gate.metric) for other in checked):
            errors.add(f"gates[{index}]", f"{gate.judge_name}'s {gate.metric} is gated twice")
            continue
        checked.append(gate)
    errors.raise_any()
    return checked


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
    run_name = _name(name)
    rows, dataset = _rows(experiment, data)
    if not predict and data.trace_ids is None and data.filter_string is None and all(row.outputs is None for row in rows):
        raise PayloadError([("records", "no record has outputs to judge; give them 'outputs', or evaluate with a predict function")])
    with transaction.atomic():
        chosen = _judges(experiment, judges, judge_model, user)
        checked_gates = _gates(gates, chosen)
        run = EvaluationRun.objects.create(
            experiment=experiment,
            dataset=dataset,
            dataset_name=dataset.name if dataset else "",
            name=run_name,
            judges=[{"judge_id": judge.pk, "name": judge.name, "version": judge.version, "output_type": judge.output_type} for judge in chosen],
            params=params or {},
            row_count=len(rows),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        RunGate.objects.bulk_create(
            RunGate(run=run, judge_name=gate.judge_name, metric=gate.metric, operator=gate.operator, threshold=gate.threshold) for gate in checked_gates
        )
        RunRow.objects.bulk_create(
            [
                RunRow(
                    run=run,
                    position=position,
                    record=row.record,
                    record_version=row.record.version if row.record else None,
                    record_hash=row.record.content_hash if row.record else "",
                    inputs=row.inputs,
                    expectations=row.expectations,
                    outputs=row.outputs,
                    source_trace_id=row.source_trace.trace_id if row.source_trace else "",
                )
                for position, row in enumerate(rows)
            ],
            batch_size=1000,
        )
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
    Trace.objects.bulk_update(stored, ["evaluation_run", "expectations"], batch_size=500)


def _trace_given_outputs(run: EvaluationRun, rows: list[_Row]) -> None:
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
        RunRow.objects.bulk_update(chunk, ["trace"], batch_size=500)


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
        current = EvaluationRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
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
        RunRow.objects.bulk_update(rows, ["trace", "outputs", "error", "latency_ms"], batch_size=500)
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


def _start_judging(run: EvaluationRun) -> None:
    """Inside the transaction: the run's judges on every row that has a trace and no error, as the job run.id."""
    judge_ids = [entry["judge_id"] for entry in run.judges]
    judges = list(Judge.objects.filter(pk__in=judge_ids).select_related("endpoint"))
    missing = [entry["name"] for entry in run.judges if entry["judge_id"] not in {judge.pk for judge in judges}]
    if missing:
        raise ConfigError({"judges": f"judge {', '.join(missing)} was deleted after the run started"})
    judges.sort(key=lambda judge: judge_ids.index(judge.pk))
    trace_pks = list(RunRow.objects.filter(run=run, trace__isnull=False, error="").order_by("position").values_list("trace_id", flat=True))
    now = timezone.now()
    ids = start_judges_on_traces(judges, trace_pks, job=run.id, priority=RUN_PRIORITY) if trace_pks else []
    status = RunStatus.JUDGING if ids else RunStatus.DONE
    EvaluationRun.objects.filter(pk=run.pk).update(status=status, judging_started_at=now, finished_at=None if ids else now)
    run.status, run.judging_started_at = status, now


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
    missed: an evaluation abandoned by the sweep); runs nobody logged to for ABANDONED_AFTER are cancelled."""
    now = now or timezone.now()
    finished = sum(finish_if_judged(run_id) for run_id in EvaluationRun.objects.filter(status=RunStatus.JUDGING).values_list("pk", flat=True))
    cancelled = EvaluationRun.objects.filter(status=RunStatus.PREDICTING, created_at__lt=now - ABANDONED_AFTER).update(
        status=RunStatus.CANCELLED, finished_at=now
    )
    return {"finished": finished, "cancelled": cancelled}


def cancel_run(run: EvaluationRun) -> bool:
    """Stop a run: predictions are refused and its pending judging work is cancelled."""
    with transaction.atomic():
        stopped = EvaluationRun.objects.filter(pk=run.pk, status__in=(RunStatus.PREDICTING, RunStatus.JUDGING)).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now()
        )
        Evaluation.objects.filter(job=run.pk, status=EvaluationStatus.PENDING).update(status=EvaluationStatus.CANCELLED, finished_at=timezone.now())
    return bool(stopped)
