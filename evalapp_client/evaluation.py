"""Offline evaluation from the client — MLflow's `mlflow.genai.evaluate` shape: `evaluate(data=..., predict_fn=...,
judges=[...])` starts a run on the server, calls `predict_fn` on every record in a thread pool (sync or async, each
call with a timeout), logs one trace per call (inputs, outputs, latency, error, and the spans the function makes
through the OpenTelemetry API under a root span), waits while the server judges, and returns an
`EvaluationResult`: per-judge metrics with 95% intervals and n, per-row results, and `.passed` for the gates.
Reference: docs/client.md."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from evalapp_client.datasets import Dataset, _as_records
from evalapp_client.errors import JobTimeoutError
from evalapp_client.otel import Capture
from evalapp_client.transport import Http

API = "/api/v1"
PREDICTIONS_PER_REQUEST = 200
FLUSH_SECONDS = 0.5
ROWS_PER_PAGE = 500
FINISHED = ("done", "cancelled")
# The wait between two looks at a run: from the first to the longest; shorter when the verdicts still missing will
# be in sooner at the rate they came in since the last look (a run ends on its last verdict: the client knows it
# about a tenth of a second later, not up to half a second).
POLL_SECONDS = (0.2, 0.1, 0.5)  # first, shortest, longest


class EvaluationClient(Protocol):
    _http: Http

    def _experiment_id(self, experiment: Any) -> int: ...


@dataclass
class JudgeMetric:
    """One judge over the run: yes/no judges have `pass_rate` (share of yes) with its 95% Wilson interval, numeric
    judges `mean` with its 95% t interval; `n` verdicts count, `errors` and `not_applicable` rows do not."""

    name: str
    output_type: str
    n: int
    errors: int = 0
    not_applicable: int = 0
    pending: int = 0
    pass_rate: float | None = None
    pass_rate_low: float | None = None
    pass_rate_high: float | None = None
    mean: float | None = None
    mean_low: float | None = None
    mean_high: float | None = None
    cost_usd: float = 0.0
    judge_id: int | None = None
    version: int | None = None

    @property
    def value(self) -> float | None:
        return self.pass_rate if self.pass_rate is not None else self.mean


@dataclass
class GateOutcome:
    judge: str
    metric: str
    operator: str
    threshold: float
    value: float | None
    n: int
    passed: bool
    reason: str = ""

    def __str__(self) -> str:
        shown = "—" if self.value is None else f"{self.value:.4g}"
        return f"{'PASS' if self.passed else 'FAIL'}  {self.judge} {self.metric} {shown} {self.operator} {self.threshold:g} (n={self.n}){' — ' + self.reason if self.reason else ''}"


@dataclass
class RowVerdict:
    judge: str
    state: str  # judged | error | not_applicable | pending | running | missing (no trace: the predict function failed)
    value: Any = None
    passed: bool | None = None
    rationale: str = ""
    error_code: str = ""
    error_message: str = ""


@dataclass
class RowResult:
    position: int
    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    error: str = ""
    latency_ms: int | None = None
    trace_id: str | None = None
    record_id: int | None = None
    verdicts: dict[str, RowVerdict] = field(default_factory=dict)

    def value(self, judge: str) -> Any:
        verdict = self.verdicts.get(judge)
        return verdict.value if verdict is not None else None


@dataclass
class EvaluationResult:
    """What `evaluate` returns once the server has judged every row."""

    run_id: str
    experiment_id: int
    name: str
    status: str
    metrics: dict[str, JudgeMetric]
    gates: list[GateOutcome]
    passed: bool
    rows: list[RowResult]
    cost_usd: float = 0.0
    row_errors: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> str:
        """A few lines a person (or a CI log) can read: each judge's figure with its interval and n, each gate."""
        lines = [f"run {self.name!r} ({self.run_id}): {len(self.rows)} rows, {self.row_errors} predict errors, ${self.cost_usd:.4f}"]
        for metric in self.metrics.values():
            if metric.pass_rate is not None:
                figure = f"pass rate {metric.pass_rate:.1%} [{metric.pass_rate_low:.1%}, {metric.pass_rate_high:.1%}]"
            elif metric.mean is not None:
                low = "—" if metric.mean_low is None else f"{metric.mean_low:.3g}"
                high = "—" if metric.mean_high is None else f"{metric.mean_high:.3g}"
                figure = f"mean {metric.mean:.3g} [{low}, {high}]"
            else:
                figure = "no verdicts"
            extra = f", {metric.errors} errors" if metric.errors else ""
            extra += f", {metric.not_applicable} not applicable" if metric.not_applicable else ""
            lines.append(f"  {metric.name}: {figure} (n={metric.n}{extra})")
        lines += [f"  {gate}" for gate in self.gates]
        if self.passed:
            lines.append("PASSED")
        elif self.status != "done":
            lines.append(f"FAILED: the run is {self.status}, not done (a run that did not finish never passes)")
        else:
            lines.append("FAILED: a quality gate did not pass")
        return "\n".join(lines)


# --- what the run reads ---------------------------------------------------------------------------------------------


def _data_fields(data: Any) -> tuple[dict[str, Any], int | None]:
    """The create request's data part, and the experiment a Dataset object belongs to."""
    if isinstance(data, Dataset):
        return {"dataset": data.id}, data.experiment_id
    if isinstance(data, str):
        return {"dataset": data}, None
    if isinstance(data, dict):
        keys = set(data)
        if keys and keys <= {"trace_ids", "filter_string"}:
            return dict(data), None
        raise TypeError('data as a dict must be {"trace_ids": [...]} or {"filter_string": "..."}; give records as a list')
    if isinstance(data, (list, tuple)) and data and all(isinstance(item, str) for item in data):
        return {"trace_ids": list(data)}, None
    records = _as_records(data)
    return {"records": [{key: value for key, value in record.items() if key != "tags"} for record in records]}, None


# --- calling the predict function -----------------------------------------------------------------------------------


@dataclass
class _Prediction:
    position: int
    outputs: Any = None
    error: str = ""
    latency_ms: int = 0
    start_time: str = ""
    spans: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"position": self.position, "latency_ms": self.latency_ms, "start_time": self.start_time}
        if self.error:
            body["error"] = self.error
        else:
            body["outputs"] = self.outputs
        if self.spans:
            body["spans"] = self.spans
        return body


def _jsonable(value: Any) -> Any:
    """The predict function's answer as JSON (pydantic models, dataclasses and other objects as best we can)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        pass
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    return json.loads(json.dumps(value, default=str))


def _call(predict_fn: Callable[..., Any], inputs: dict[str, Any], timeout: float | None) -> Any:
    """One call, in its own thread so a call that never returns costs a timeout, not a pool worker forever.
    An async function runs in an event loop of its own."""
    outcome: dict[str, Any] = {}
    capture = Capture.start(inputs)

    def target() -> None:
        with capture.root():
            try:
                result = predict_fn(**inputs)
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
                outcome["value"] = result
            except BaseException as error:  # noqa: BLE001 — whatever the function raises is the row's error
                outcome["error"] = error
                capture.failed(error)
                return
            capture.answered(outcome["value"])

    worker = threading.Thread(target=target, name="evalapp-predict", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"predict_fn took longer than {timeout:g} s")
    outcome["spans"] = capture.spans()
    return outcome


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _predict_one(predict_fn: Callable[..., Any], position: int, inputs: dict[str, Any], timeout: float | None) -> _Prediction:
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    prediction = _Prediction(position, start_time=started.isoformat())
    try:
        outcome = _call(predict_fn, inputs, timeout)
        prediction.spans = outcome.get("spans") or []
        if "error" in outcome:
            error = outcome["error"]
            prediction.error = f"{type(error).__name__}: {error}"
        else:
            prediction.outputs = _jsonable(outcome["value"])
    except TimeoutError as error:
        prediction.error = f"TimeoutError: {error}"
    prediction.latency_ms = int((time.perf_counter() - clock) * 1000)
    return prediction


class _Progress:
    """One line on stderr, rewritten in place: predictions made, then judgements settled."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.last = ""

    def show(self, text: str) -> None:
        if self.enabled and text != self.last:
            self.stream.write("\r" + text.ljust(len(self.last)))
            self.stream.flush()
            self.last = text

    def close(self) -> None:
        if self.enabled and self.last:
            self.stream.write("\n")
            self.stream.flush()


def _predict_all(
    http: Http, url: str, rows: list[dict[str, Any]], predict_fn: Callable[..., Any], *, max_workers: int, timeout: float | None, progress: _Progress
) -> None:
    """Call the function on every row (at most `max_workers` at once) and log the results in batches as they come."""
    pending: list[_Prediction] = []
    made = 0
    last_flush = time.monotonic()
    # The first request goes as soon as one round of the pool is in, so the server starts judging at once rather
    # than FLUSH_SECONDS into the predictions (0.5 s of the run's wall time); the rest go in batches.
    first = min(max_workers, len(rows))

    def flush() -> None:
        nonlocal pending, last_flush
        for start in range(0, len(pending), PREDICTIONS_PER_REQUEST):
            http.request("POST", url, body={"predictions": [item.as_json() for item in pending[start : start + PREDICTIONS_PER_REQUEST]]}, compress=True)
        pending, last_flush = [], time.monotonic()

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="evalapp-evaluate") as pool:
        futures: set[Future] = {pool.submit(_predict_one, predict_fn, row["position"], row["inputs"], timeout) for row in rows}
        while futures:
            done, futures = wait(futures, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                pending.append(future.result())
                made += 1
            progress.show(f"evaluate: predicted {made}/{len(rows)}")
            if (
                len(pending) >= PREDICTIONS_PER_REQUEST
                or (pending and time.monotonic() - last_flush >= FLUSH_SECONDS)
                or (pending and not futures)
                or (first and len(pending) >= first)
            ):
                flush()
                first = 0


# --- the result -----------------------------------------------------------------------------------------------------


def _metric(item: dict[str, Any]) -> JudgeMetric:
    known = {name for name in JudgeMetric.__dataclass_fields__}
    return JudgeMetric(**{key: value for key, value in item.items() if key in known})


def _rows(http: Http, run_url: str) -> list[RowResult]:
    rows: list[RowResult] = []
    offset = 0
    while True:
        page = http.request("GET", f"{run_url}/rows", params={"offset": offset, "page_size": ROWS_PER_PAGE})
        for item in page["rows"]:
            verdicts = {name: RowVerdict(judge=name, **verdict) for name, verdict in item["verdicts"].items()}
            rows.append(
                RowResult(
                    position=item["position"],
                    inputs=item["inputs"],
                    expectations=item["expectations"],
                    outputs=item["outputs"],
                    error=item["error"],
                    latency_ms=item["latency_ms"],
                    trace_id=item["trace_id"],
                    record_id=item["record_id"],
                    verdicts=verdicts,
                )
            )
        offset += len(page["rows"])
        if not page["rows"] or offset >= page["total"]:
            return rows


def _gate(item: dict[str, Any]) -> GateOutcome:
    known = set(GateOutcome.__dataclass_fields__)
    return GateOutcome(judge=item["judge_name"], **{key: value for key, value in item.items() if key in known})


def _result(http: Http, run_url: str, run: dict[str, Any]) -> EvaluationResult:
    summary = run["summary"]
    return EvaluationResult(
        run_id=run["id"],
        experiment_id=run["experiment_id"],
        name=run["name"],
        status=run["status"],
        metrics={item["name"]: _metric(item) for item in summary["judges"]},
        gates=[_gate(gate) for gate in summary["gates"]],
        passed=summary["passed"],
        rows=_rows(http, run_url),
        cost_usd=summary["cost_usd"],
        row_errors=summary["row_errors"],
        raw=run,
    )


class EvaluationMixin:
    """`Client.evaluate` and `Client.get_evaluation`."""

    def evaluate(
        self: EvaluationClient,
        data: Any,
        predict_fn: Callable[..., Any] | None = None,
        judges: Iterable[str] = (),
        *,
        experiment: Any = None,
        run_name: str | None = None,
        gates: Iterable[Any] = (),
        max_workers: int = 10,
        timeout: float | None = 60.0,
        wait_timeout: float = 3600.0,
        progress: bool = True,
        params: dict[str, Any] | None = None,
        judge_model: str | int | None = None,
    ) -> EvaluationResult:
        """Evaluate an application version and wait for the verdicts.

        `data`: a `Dataset` (or a dataset's name), a list of records `{"inputs": {...}, "expectations": {...},
        "outputs": ...}` (or a DataFrame with those columns), a list of trace ids, or `{"filter_string": "..."}`
        for existing traces. `predict_fn` is called as `predict_fn(**inputs)` on each record, `max_workers` at a
        time, each call given `timeout` seconds (None: no limit); a call that raises or times out becomes an error
        row and the run goes on. Without `predict_fn` the records' `outputs` (or the traces) are judged as they are.
        `judges`: the experiment's judges by name, or built-ins (`"Correctness"`, `"safety"`...). `gates`: e.g.
        `["correctness>=0.9"]`. `experiment` defaults to the Dataset's, else `$EVALAPP_EXPERIMENT`. Progress goes
        to stderr (`progress=False` to silence it). Raises `JobTimeoutError` after `wait_timeout` seconds (the
        run goes on on the server)."""
        fields, dataset_experiment = _data_fields(data)
        experiment = experiment if experiment is not None else dataset_experiment or os.environ.get("EVALAPP_EXPERIMENT")
        if experiment is None:
            raise ValueError("which experiment? pass experiment=... (or set EVALAPP_EXPERIMENT), or give a Dataset object as data")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if predict_fn is not None and not callable(predict_fn):
            raise TypeError("predict_fn must be a function (sync or async) called as predict_fn(**inputs)")
        experiment_id = self._experiment_id(experiment)
        base = f"{API}/experiments/{experiment_id}/evaluation-runs"
        body = {
            **fields,
            "judges": list(judges),
            "gates": list(gates),
            "predict": predict_fn is not None,
            **({"name": run_name} if run_name else {}),
            **({"params": params} if params else {}),
            **({"judge_model": judge_model} if judge_model is not None else {}),
        }
        run = self._http.request("POST", base, body=body, compress=True)
        run_url = f"{API}/evaluation-runs/{run['id']}"  # reads: the run with its summary, its rows
        bar = _Progress(progress)
        try:
            if predict_fn is not None:
                try:
                    _predict_all(self._http, f"{base}/{run['id']}/predictions", run["rows"], predict_fn, max_workers=max_workers, timeout=timeout, progress=bar)
                except BaseException:  # interrupted (Ctrl-C, a lost connection): don't leave the run waiting for rows
                    with contextlib.suppress(Exception):
                        self._http.request("POST", f"{base}/{run['id']}/cancel")
                    raise
            run = _wait(self._http, run_url, wait_timeout, bar)
        finally:
            bar.close()
        return _result(self._http, run_url, run)

    def get_evaluation(self: EvaluationClient, run_id: str) -> EvaluationResult:
        """A run as it stands (judged or not), with its metrics and rows."""
        run_url = f"{API}/evaluation-runs/{run_id}"
        return _result(self._http, run_url, self._http.request("GET", run_url))


def _wait(http: Http, run_url: str, wait_timeout: float, bar: _Progress) -> dict[str, Any]:
    deadline = time.monotonic() + wait_timeout
    interval: float | None = None
    seen: tuple[float, int] | None = None  # when the last look was, and how many were judged then
    while True:
        run = http.request("GET", run_url)
        summary = run["summary"]
        bar.show(f"evaluate: {run['status']}, judged {summary['done']}/{summary['total']}")
        if run["status"] in FINISHED:
            return run
        now = time.monotonic()
        if now >= deadline:
            raise JobTimeoutError(f"run {run['name']!r} is still {run['status']} after {wait_timeout:g} s; it goes on on the server", run)
        interval = _next_poll(interval, seen, now, summary["done"], summary["total"])
        seen = (now, summary["done"])
        time.sleep(interval)


def _next_poll(previous: float | None, seen: tuple[float, int] | None, now: float, done: int, total: int) -> float:
    """How long to wait before the next look, after the wait `previous` (None: this was the first look), `seen` the
    time and count of judged at the look before, `done` of `total` judged now."""
    first, shortest, longest = POLL_SECONDS
    interval = first if previous is None else min(previous * 1.5, longest)
    if seen is not None and done > seen[1] and now > seen[0]:
        rate = (done - seen[1]) / (now - seen[0])
        interval = min(interval, max(shortest, (total - done) / rate))
    return interval
