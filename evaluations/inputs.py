"""What a new evaluation run reads and who judges it, checked before anything is written: the rows (from a dataset,
inline records, or existing traces), the judges (by name, or a built-in's name), the gates. Raises PayloadError
naming every field at fault. `resolve_judges` may make a built-in's judge: call it inside the run's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from datasets.actions import TraceSelection, record_from_trace, select_traces
from datasets.models import Dataset, DatasetRecord
from datasets.records import MAX_RECORDS_PER_MERGE, Errors, check_expectations, check_inputs
from evaluations import gates as gate_rules
from judges.actions import create_judge
from judges.catalog import BUILTIN_JUDGES
from judges.models import Judge, ModelEndpoint, Scope
from traces.models import Experiment, Trace, TraceStatus
from traces.payload import PayloadError

MAX_ROWS = MAX_RECORDS_PER_MERGE
MAX_JUDGES = 20
MAX_NAME_CHARS = 200


@dataclass
class RunData:
    """What a run evaluates: exactly one of a dataset (by id or name), records given inline, or existing traces."""

    dataset: Any = None
    records: Any = None
    trace_ids: Any = None
    filter_string: Any = None


@dataclass
class RowIn:
    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    record: DatasetRecord | None = None
    source_trace: Trace | None = None


def run_name(value: Any) -> str:
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


def _dataset_rows(dataset: Dataset) -> list[RowIn]:
    records = list(DatasetRecord.objects.filter(dataset=dataset).order_by("created_at", "pk")[: MAX_ROWS + 1])
    if not records:
        raise PayloadError([("dataset", f"dataset {dataset.name!r} has no records; add some first")])
    if len(records) > MAX_ROWS:
        raise PayloadError([("dataset", f"dataset {dataset.name!r} has more than {MAX_ROWS:,} records; a run reads at most that many")])
    return [RowIn(record.inputs, dict(record.expectations or {}), record.outputs, record=record) for record in records]


def _inline_rows(records: Any) -> list[RowIn]:
    """Records as MLflow's evaluate takes them: {inputs, expectations?, outputs?} (tags are a dataset's business)."""
    if not isinstance(records, list):
        raise PayloadError([("records", "must be a list of {\"inputs\": {...}, \"expectations\": {...}, \"outputs\": ...}")])
    if not records:
        raise PayloadError([("records", "is empty; give at least one record")])
    if len(records) > MAX_ROWS:
        raise PayloadError([("records", f"holds {len(records):,} records; a run reads at most {MAX_ROWS:,}")])
    errors = Errors()
    rows: list[RowIn] = []
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
            rows.append(RowIn(inputs, expectations, item.get("outputs")))
    errors.raise_any()
    return rows


def _trace_rows(experiment: Experiment, trace_ids: Any, filter_string: Any) -> list[RowIn]:
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
        rows.append(RowIn(inputs, {}, trace.response, source_trace=trace))
    return rows


def read_rows(experiment: Experiment, data: RunData) -> tuple[list[RowIn], Dataset | None]:
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


def resolve_judges(experiment: Experiment, names: Any, judge_model: Any, user) -> list[Judge]:
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


def check_gates(raw: Any, judges: list[Judge]) -> list[gate_rules.GateIn]:
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
