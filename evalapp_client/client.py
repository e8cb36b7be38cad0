"""`Client`: evalapp's REST API from Python, with the verbs of MLflow's automatic evaluation
(`register` → `start(sampling_config)` → `update` → `stop`). Needs httpx only, not Django.

Experiments may be given as an `Experiment`, an id, or a name; endpoints as a `ModelEndpoint`, an id, or a name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, Union
from urllib.parse import quote

import httpx

from evalapp_client.builtins import BUILTIN_SCOPES, default_judge_name, resolve_builtin
from evalapp_client.datasets import DatasetsMixin
from evalapp_client.errors import BadRequestError, NotFoundError
from evalapp_client.evaluation import EvaluationMixin
from evalapp_client.transport import Http
from evalapp_client.types import (
    ConnectionCheck,
    Experiment,
    Job,
    Judge,
    JudgeState,
    ModelEndpoint,
    from_json,
)

ExperimentRef = Union[Experiment, int, str]
EndpointRef = Union[ModelEndpoint, int, str]
TimeArg = Union[datetime, int, str, None]

API = "/api/v1"
GATEWAY_PREFIX = "gateway:/"  # MLflow writes models as "gateway:/<endpoint name>"


def _moment(value: date | datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _time_param(value: TimeArg) -> str | None:
    """datetimes (with a timezone) as ISO 8601, ints as epoch milliseconds, strings as given."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Client(DatasetsMixin, EvaluationMixin):
    """A connection to one evalapp server.

    `base_url` defaults to `$EVALAPP_URL` (else http://127.0.0.1:8000), `token` to `$EVALAPP_TOKEN`. `timeout`
    is seconds per HTTP request (or an `httpx.Timeout`). Use it as a context manager, or call `close()`.
    Every failure raises `EvalappError` (see `evalapp_client.errors`); the token never appears in reprs or errors."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
    ):
        self.base_url = (base_url or os.environ.get("EVALAPP_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token if token is not None else os.environ.get("EVALAPP_TOKEN")
        if not token:
            raise ValueError("no API token: pass token=... or set EVALAPP_TOKEN (create one with `manage.py create_token`)")
        self.timeout = timeout
        self._http = Http(self.base_url, token, timeout=timeout, headers=headers, transport=transport, verify=verify)

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- experiments -------------------------------------------------------------------------------------

    def list_experiments(self) -> list[Experiment]:
        return [from_json(Experiment, item) for item in self._http.request("GET", f"{API}/experiments")["experiments"]]

    def get_experiment(self, experiment: ExperimentRef) -> Experiment:
        """By id, or by name (raises `NotFoundError` if there is none)."""
        if isinstance(experiment, Experiment):
            experiment = experiment.id
        if isinstance(experiment, int):
            return from_json(Experiment, self._http.request("GET", f"{API}/experiments/{experiment}"))
        for found in self.list_experiments():
            if found.name == experiment:
                return found
        raise NotFoundError(f"no experiment named {experiment!r}; create it with set_experiment({experiment!r})")

    def create_experiment(self, name: str, description: str = "") -> Experiment:
        return from_json(Experiment, self._http.request("POST", f"{API}/experiments", body={"name": name, "description": description}))

    def set_experiment(self, name: str, description: str = "") -> Experiment:
        """The experiment named `name`, created if there is none yet (like `mlflow.set_experiment`)."""
        try:
            return self.get_experiment(name)
        except NotFoundError:
            pass
        try:
            return self.create_experiment(name, description)
        except BadRequestError as error:
            if "name" not in error.fields:
                raise
            return self.get_experiment(name)  # created by someone else meanwhile; if not, this raises

    # --- model endpoints ---------------------------------------------------------------------------------

    def list_endpoints(self) -> list[ModelEndpoint]:
        return [from_json(ModelEndpoint, item) for item in self._http.request("GET", f"{API}/endpoints")["endpoints"]]

    def get_endpoint(self, endpoint: EndpointRef) -> ModelEndpoint:
        if isinstance(endpoint, ModelEndpoint):
            endpoint = endpoint.id
        if isinstance(endpoint, int):
            return from_json(ModelEndpoint, self._http.request("GET", f"{API}/endpoints/{endpoint}"))
        for found in self.list_endpoints():
            if found.name == endpoint:
                return found
        raise NotFoundError(f"no model endpoint named {endpoint!r}")

    def create_endpoint(self, name: str, model: str, *, api_base: str | None = None, api_key: str | None = None, **settings: Any) -> ModelEndpoint:
        """`model` is a litellm model string (`openai/gpt-4.1-mini`, or `openai/<name>` with an `api_base` for any
        OpenAI-compatible server). Other settings: inference_params, max_concurrency, requests_per_minute,
        timeout_seconds, max_retries, input_cost_per_million, output_cost_per_million, context_window, output_mode."""
        body: dict[str, Any] = {"name": name, "model": model, **settings}
        if api_base is not None:
            body["api_base"] = api_base
        if api_key is not None:
            body["api_key"] = api_key
        return from_json(ModelEndpoint, self._http.request("POST", f"{API}/endpoints", body=body))

    def update_endpoint(self, endpoint: EndpointRef, **fields: Any) -> ModelEndpoint:
        """Change settings; `api_key=` sets a new key, `clear_api_key=True` removes it."""
        if not fields:
            raise ValueError("nothing to update: pass settings such as max_concurrency=4")
        endpoint_id = self._endpoint_id(endpoint)
        return from_json(ModelEndpoint, self._http.request("PATCH", f"{API}/endpoints/{endpoint_id}", body=fields))

    def test_endpoint(self, endpoint: EndpointRef) -> ConnectionCheck:
        """One tiny call to the model. A failed connection is an answer (`ok=False`), not an exception."""
        body = self._http.request("POST", f"{API}/endpoints/{self._endpoint_id(endpoint)}/test", body={})
        return ConnectionCheck(ok=bool(body["ok"]), message=str(body["message"]))

    # --- judges ------------------------------------------------------------------------------------------

    def register_judge(
        self,
        experiment: ExperimentRef,
        name: str | None = None,
        builtin: str | None = None,
        *,
        model: EndpointRef,
        instructions: str | None = None,
        guidelines: str | None = None,
        output_type: str | None = None,
        categories: list[str] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        scope: str | None = None,
        **settings: Any,
    ) -> Judge:
        """Create a judge (switched off: `start()` it). Either a built-in — `builtin="UserFrustration"` or
        `"user_frustration"`, whose scope is filled in — or a custom judge from `instructions` with
        `{{ inputs }}`/`{{ outputs }}`/`{{ conversation }}`... variables and an `output_type` (boolean,
        categorical with `categories`, integer, float, string). `model` is the model endpoint (its name).
        `guidelines` is the rules text for the Guidelines-style built-ins. `name` defaults to the built-in's."""
        body: dict[str, Any] = self._judge_fields({"model": model, **settings})
        if builtin is not None:
            key = resolve_builtin(builtin)
            body["builtin_key"] = key
            if scope is None and key in BUILTIN_SCOPES:
                scope = BUILTIN_SCOPES[key]
            if name is None:
                name = default_judge_name(key)
        if name is None:
            raise ValueError("a custom judge needs a name=")
        if instructions is not None and guidelines is not None:
            raise ValueError("pass instructions= or guidelines=, not both (guidelines are the built-in's instructions)")
        optional = {
            "name": name,
            "scope": scope,
            "instructions": instructions if instructions is not None else guidelines,
            "output_type": output_type,
            "categories": categories,
            "min_value": min_value,
            "max_value": max_value,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        data = self._http.request("POST", f"{API}/experiments/{self._experiment_id(experiment)}/judges", body=body)
        return self._judge(data)

    def get_judge(self, experiment: ExperimentRef, name: str) -> Judge:
        """The judge named `name` (MLflow's `get_scorer`); `NotFoundError` if there is none."""
        return self._judge(self._http.request("GET", f"{API}/experiments/{self._experiment_id(experiment)}/judges/{quote(name, safe='')}"))

    def list_judges(self, experiment: ExperimentRef) -> list[Judge]:
        data = self._http.request("GET", f"{API}/experiments/{self._experiment_id(experiment)}/judges")
        return [self._judge(item) for item in data["judges"]]

    def get_job(self, job_id: str) -> Job:
        """A job started with `Judge.run`, with its progress and results so far."""
        return Job.from_json(self._http.request("GET", f"{API}/jobs/{quote(str(job_id), safe='')}"), self)

    # --- traces and sessions -----------------------------------------------------------------------------

    def log_traces(self, experiment: ExperimentRef, traces: list[dict[str, Any]], *, batch_size: int = 1000) -> dict[str, Any]:
        """Store traces (the JSON batch schema in the README), `batch_size` per request; re-sending a trace updates
        it. Returns `{"created", "updated", "spans", "trace_ids"}` summed over the batches. Each request is all or
        nothing; if one fails, the batches before it are stored and the error is raised."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        path = f"{API}/experiments/{self._experiment_id(experiment)}/traces"
        total: dict[str, Any] = {"created": 0, "updated": 0, "spans": 0, "trace_ids": []}
        for start in range(0, len(traces), batch_size):
            result = self._http.request("POST", path, body={"traces": traces[start : start + batch_size]}, compress=True)
            for key in ("created", "updated", "spans"):
                total[key] += result.get(key, 0)
            total["trace_ids"].extend(result.get("trace_ids", []))
        return total

    def get_trace(self, trace_id: str) -> dict[str, Any]:
        """One trace with its spans and assessments, as the API's JSON."""
        return self._http.request("GET", f"{API}/traces/{quote(trace_id, safe='')}")

    def iter_traces(
        self,
        experiment: ExperimentRef,
        *,
        filter_string: str | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
        status: str | None = None,
        session_id: str | None = None,
        max_results: int | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Trace summaries, newest first, fetched page by page as you iterate (None `max_results` = all)."""
        params = {
            "filter_string": filter_string,
            "since": _time_param(since),
            "until": _time_param(until),
            "status": status,
            "session_id": session_id,
        }
        yield from self._http.pages(f"{API}/experiments/{self._experiment_id(experiment)}/traces", "traces", params, max_results, page_size)

    def search_traces(
        self,
        experiment: ExperimentRef,
        *,
        filter_string: str | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
        status: str | None = None,
        session_id: str | None = None,
        max_results: int | None = 1000,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Trace summaries, newest first, as a list across pages. `filter_string` is the trace search syntax
        (`trace.status = 'OK' AND metadata.environment = 'production'`); `since`/`until` bound the start time
        (datetimes with a timezone, ISO strings, or epoch ms). At most `max_results` (None: all)."""
        return list(
            self.iter_traces(
                experiment,
                filter_string=filter_string,
                since=since,
                until=until,
                status=status,
                session_id=session_id,
                max_results=max_results,
                page_size=page_size,
            )
        )

    def export_traces(
        self,
        experiment: ExperimentRef,
        path: str | os.PathLike[str],
        *,
        format: str = "csv",
        filter_string: str | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
    ) -> int:
        """Every trace the filter selects, with each trace judge's latest verdict (value, rationale, version, error),
        written to `path` as CSV or JSON Lines (`format="jsonl"`), streamed; returns the bytes written."""
        params = {"format": format, "filter_string": filter_string, "since": _time_param(since), "until": _time_param(until)}
        with open(path, "wb") as into:
            return self._http.download(f"{API}/experiments/{self._experiment_id(experiment)}/traces/export", params, into)

    def search_sessions(
        self,
        experiment: ExperimentRef,
        *,
        user_id: str | None = None,
        search: str | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
        max_results: int | None = 1000,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Conversations, most recently active first; `search` matches part of the session id, `since`/`until`
        bound the last trace's time."""
        params = {"user_id": user_id, "search": search, "since": _time_param(since), "until": _time_param(until)}
        path = f"{API}/experiments/{self._experiment_id(experiment)}/sessions"
        return list(self._http.pages(path, "sessions", params, max_results, page_size))

    def get_session(self, experiment: ExperimentRef, session_id: str) -> dict[str, Any]:
        """One conversation with its traces (turns) in order."""
        return self._http.request("GET", f"{API}/experiments/{self._experiment_id(experiment)}/sessions/{quote(session_id, safe='')}")

    # --- results -----------------------------------------------------------------------------------------

    def why_not_judged(self, trace_id: str) -> dict[str, JudgeState]:
        """For each trace judge of the trace's experiment: judged (with the value), pending, error, or why not."""
        data = self._http.request("GET", f"{API}/traces/{quote(trace_id, safe='')}/judges")
        return {name: from_json(JudgeState, state) for name, state in data["judges"].items()}

    def why_not_judged_session(self, experiment: ExperimentRef, session_id: str) -> dict[str, JudgeState]:
        """The same for each session judge and one conversation."""
        path = f"{API}/experiments/{self._experiment_id(experiment)}/sessions/{quote(session_id, safe='')}/judges"
        return {name: from_json(JudgeState, state) for name, state in self._http.request("GET", path)["judges"].items()}

    def list_assessments(
        self,
        experiment: ExperimentRef,
        *,
        trace_id: str | None = None,
        session_id: str | None = None,
        judge: str | None = None,
        source_type: str | None = None,
        valid: bool | None = None,
        max_results: int | None = 1000,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Assessments (judges' and people's), newest first. `judge` is the assessment name, `source_type` is
        LLM_JUDGE, HUMAN or CODE; `valid=True` leaves out results a newer one replaced."""
        params = {
            "trace_id": trace_id,
            "session_id": session_id,
            "judge": judge,
            "source_type": source_type,
            "valid": "true" if valid else None,
        }
        path = f"{API}/experiments/{self._experiment_id(experiment)}/assessments"
        return list(self._http.pages(path, "assessments", params, max_results, page_size))

    def log_feedback(
        self,
        experiment: ExperimentRef,
        *,
        name: str,
        value: bool | int | float | str,
        trace_id: str | None = None,
        session_id: str | None = None,
        rationale: str = "",
    ) -> dict[str, Any]:
        """Record a person's verdict (a HUMAN assessment) on one trace or one session; the token's user is the
        source, and their newer feedback under the same name replaces their earlier one."""
        if (trace_id is None) == (session_id is None):
            raise ValueError("pass either trace_id= or session_id=")
        body: dict[str, Any] = {"name": name, "value": value, "rationale": rationale}
        body.update({"trace_id": trace_id} if trace_id is not None else {"session_id": session_id})
        return self._http.request("POST", f"{API}/experiments/{self._experiment_id(experiment)}/assessments", body=body)

    def get_overview(
        self,
        experiment: ExperimentRef,
        range: str | None = None,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
    ) -> dict[str, Any]:
        """The aggregates the Overview tab draws, as the API's JSON: per judge (judged, errors, pass rate, mean or
        category shares, cost, people's feedback, a time series) and performance (traces, error rate, p50/p95
        latency, tokens, judge cost). Either a preset `range` ("1h", "24h", "7d", "30d"; the server's default is
        7d) or `start` (and optionally `end`): dates (`end` includes that whole day) or datetimes; at most 366 days."""
        if range is not None and (start is not None or end is not None):
            raise ValueError("pass range= or start=/end=, not both")
        query = {"range": range, "from": _moment(start), "to": _moment(end)}
        return self._http.request("GET", f"{API}/experiments/{self._experiment_id(experiment)}/overview", params=query)

    # --- plumbing ----------------------------------------------------------------------------------------

    def _experiment_id(self, experiment: ExperimentRef) -> int:
        if isinstance(experiment, Experiment):
            return experiment.id
        if isinstance(experiment, bool):
            raise TypeError("experiment must be an Experiment, an id or a name")
        if isinstance(experiment, int):
            return experiment
        if not isinstance(experiment, str):
            raise TypeError(f"experiment must be an Experiment, an id or a name, not {type(experiment).__name__}")
        return self.get_experiment(experiment).id

    def _endpoint_id(self, endpoint: EndpointRef) -> int:
        if isinstance(endpoint, ModelEndpoint):
            return endpoint.id
        if isinstance(endpoint, int) and not isinstance(endpoint, bool):
            return endpoint
        if not isinstance(endpoint, str):
            raise TypeError(f"endpoint must be a ModelEndpoint, an id or a name, not {type(endpoint).__name__}")
        return self.get_endpoint(endpoint).id

    def _judge(self, data: dict[str, Any]) -> Judge:
        return from_json(Judge, data, _client=self)

    def _judge_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Client spellings → API fields: `model` is the endpoint (a name, an id, a ModelEndpoint, or MLflow's
        "gateway:/<name>"); `guidelines` is the instructions text; `builtin` the catalog key."""
        body = dict(fields)
        if "model" in body:
            if "endpoint" in body:
                raise ValueError("pass model= or endpoint=, not both")
            body["endpoint"] = body.pop("model")
        if "endpoint" in body:
            endpoint = body["endpoint"]
            if isinstance(endpoint, ModelEndpoint):
                endpoint = endpoint.name
            elif isinstance(endpoint, str) and endpoint.startswith(GATEWAY_PREFIX):
                endpoint = endpoint[len(GATEWAY_PREFIX) :]
            body["endpoint"] = endpoint
        if "guidelines" in body:
            if "instructions" in body:
                raise ValueError("pass instructions= or guidelines=, not both")
            body["instructions"] = body.pop("guidelines")
        if "builtin" in body:
            body["builtin_key"] = resolve_builtin(body.pop("builtin"))
        if "sampling_config" in body:
            raise TypeError("pass the SamplingConfig as the first argument (or sampling_config=) of start()/update()")
        return body

    def _judge_call(self, method: str, judge: Judge, suffix: str, body: dict[str, Any] | None) -> Any:
        path = f"{API}/experiments/{judge.experiment_id}/judges/{quote(judge.name, safe='')}{suffix}"
        return self._http.request(method, path, body=body)


def evaluate(data: Any, predict_fn: Any = None, judges: Any = (), *, client: Client | None = None, **options: Any):
    """`Client.evaluate` with a client from `$EVALAPP_URL` and `$EVALAPP_TOKEN` (or the `client` given); returns
    the `EvaluationResult` (docs/client.md, "Evaluating a version")."""
    if client is not None:
        return client.evaluate(data, predict_fn, judges, **options)
    with Client() as made:
        return made.evaluate(data, predict_fn, judges, **options)
