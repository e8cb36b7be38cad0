"""The objects the client hands back: small dataclasses holding the API's JSON fields.

Each keeps the whole JSON it came from in `raw`, so a field the server adds later is readable before the client
knows about it. `Judge` and `Job` also keep the client they came from, to act on themselves."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from evalapp_client.errors import JobTimeoutError


class ClientLike(Protocol):
    """What a Judge or a Job asks of the `evalapp_client.Client` that made it. Spelled out here, not imported, so
    the types don't depend on the client that depends on them."""

    def get_job(self, job_id: str) -> Job: ...

    def _judge_fields(self, fields: dict[str, Any]) -> dict[str, Any]: ...

    def _judge_call(self, method: str, judge: Judge, suffix: str, body: dict[str, Any] | None) -> Any: ...

_DATETIME_FIELDS = {"created_at", "updated_at", "enabled_at"}

T = TypeVar("T")


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def from_json(cls: type[T], data: dict[str, Any], **extra: Any) -> T:
    """Build `cls` from API JSON: known fields are taken (timestamps parsed), unknown ones stay in `raw`."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not spec.init or spec.name.startswith("_") or spec.name == "raw":
            continue
        if spec.name in data:
            value = data[spec.name]
            values[spec.name] = _parse_datetime(value) if spec.name in _DATETIME_FIELDS else value
    if any(spec.name == "raw" for spec in dataclasses.fields(cls)):  # type: ignore[arg-type]
        values["raw"] = dict(data)
    return cls(**values, **extra)


@dataclass
class SamplingConfig:
    """Which traces (or sessions) a judge evaluates automatically, as in MLflow's `ScorerSamplingConfig`.

    `sample_rate` is 0.0–1.0 (deterministic per trace); `filter_string` uses the trace search syntax
    (`metadata.environment = 'production'`; "" removes the filter); `session_idle_seconds` is how long a
    conversation must be quiet before a session judge evaluates it. A field left None is not changed."""

    sample_rate: float | None = None
    filter_string: str | None = None
    session_idle_seconds: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass
class Experiment:
    id: int
    name: str
    description: str = ""
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ModelEndpoint:
    """A model judges call. The API key is write-only: `has_api_key` says whether one is set."""

    id: int
    name: str
    model: str
    api_base: str = ""
    has_api_key: bool = False
    inference_params: dict[str, Any] = field(default_factory=dict)
    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    timeout_seconds: int | None = None
    max_retries: int | None = None
    input_cost_per_million: str | None = None
    output_cost_per_million: str | None = None
    context_window: int | None = None
    output_mode: str = ""
    detected_output_mode: str = ""
    is_standin: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ConnectionCheck:
    """The result of `Client.test_endpoint`: `ok`, and what the model said or the provider's error."""

    ok: bool
    message: str


@dataclass
class JudgeVersion:
    version: int
    config: dict[str, Any]
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class JudgeState:
    """One judge's state for one trace or session: `state` is judged, pending, running, error, filtered_out,
    sampled_out, too_old, waiting_for_idle, in_progress, judge_off, paused or not_selected; `text` says it in words."""

    state: str
    text: str
    value: Any = None
    assessment_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class JobResult:
    """One target of a job: `trace_id` or `session_id`, its evaluation `status`, and the verdict or the error."""

    status: str
    trace_id: str | None = None
    session_id: str | None = None
    value: Any = None
    rationale: str = ""
    error_code: str | None = None
    error_message: str | None = None
    cost_usd: str | None = None
    assessment_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Job:
    """Judging started by hand (`Judge.run`): `status` is queued, running or done; `results` fill in as it goes."""

    id: str
    judge: str
    status: str
    total: int = 0
    done: int = 0
    errors: int = 0
    experiment_id: int | None = None
    judge_version: int | None = None
    created_at: datetime | None = None
    results: list[JobResult] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _client: ClientLike | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], client: ClientLike | None = None) -> Job:
        job = from_json(cls, data, _client=client)
        job.results = [from_json(JobResult, item) for item in data.get("results") or []]
        return job

    @property
    def finished(self) -> bool:
        return self.status == "done"

    def refresh(self) -> Job:
        """Fetch the job's progress again (in place); returns the job."""
        fresh = self._bound().get_job(self.id)
        self._take(fresh)
        return self

    def wait(self, timeout: float = 120.0, poll_interval: float = 0.5) -> Job:
        """Poll until every target is judged (or failed); returns the job. Raises `JobTimeoutError` after
        `timeout` seconds — the job goes on running on the server."""
        deadline = time.monotonic() + timeout
        while not self.finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeoutError(
                    f"job {self.id} ({self.judge}) not finished after {timeout:g}s: {self.done} of {self.total} done", self
                )
            time.sleep(min(poll_interval, remaining))
            self.refresh()
        return self

    def _take(self, other: Job) -> None:
        for spec in dataclasses.fields(self):
            if spec.name != "_client":
                setattr(self, spec.name, getattr(other, spec.name))

    def _bound(self) -> ClientLike:
        if self._client is None:
            raise RuntimeError("this Job was built without a client; get it from Client.get_job or Judge.run")
        return self._client


@dataclass
class Judge:
    """A judge registered in an experiment. `start`, `update`, `stop`, `delete`, `versions` and `run` act on the
    server and (except `delete`) refresh this object in place, returning it."""

    id: int
    experiment_id: int
    name: str
    scope: str = "trace"
    builtin_key: str | None = None
    description: str = ""
    instructions: str = ""
    output_type: str = "boolean"
    categories: list[str] = field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    endpoint: str = ""
    model: str = ""
    sample_rate: float = 1.0
    filter_string: str = ""
    active: bool = False
    enabled_at: datetime | None = None
    session_idle_seconds: int | None = None
    daily_cost_cap_usd: str | None = None
    paused_reason: str | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _client: ClientLike | None = field(default=None, repr=False, compare=False)

    @property
    def sampling_config(self) -> SamplingConfig:
        return SamplingConfig(self.sample_rate, self.filter_string, self.session_idle_seconds)

    def start(self, sampling_config: SamplingConfig | None = None) -> Judge:
        """Switch automatic evaluation on, optionally with a new sampling config. A judge switched on also
        judges what was logged in the hour before."""
        body = sampling_config.to_json() if sampling_config is not None else {}
        return self._take(self._bound()._judge_call("POST", self, "/start", body))

    def update(self, sampling_config: SamplingConfig | None = None, **fields: Any) -> Judge:
        """Change the sampling config and/or other settings (`instructions`, `model`, `categories`,
        `daily_cost_cap_usd`, ...) without switching the judge on or off. A change to what the judge asks makes
        a new version; the name, scope and built-in can't change."""
        body = self._bound()._judge_fields(fields)
        if sampling_config is not None:
            body.update(sampling_config.to_json())
        if not body:
            raise ValueError("nothing to update: pass a SamplingConfig or settings such as instructions=...")
        return self._take(self._bound()._judge_call("PATCH", self, "", body))

    def stop(self) -> Judge:
        """Switch automatic evaluation off; its queued automatic work is cancelled at once."""
        return self._take(self._bound()._judge_call("POST", self, "/stop", {}))

    def refresh(self) -> Judge:
        return self._take(self._bound()._judge_call("GET", self, "", None))

    def delete(self) -> None:
        """Delete the judge. Its assessments stay, recorded under its name and version."""
        self._bound()._judge_call("DELETE", self, "", None)

    def versions(self) -> list[JudgeVersion]:
        """Every version of the judge's configuration, newest first."""
        body = self._bound()._judge_call("GET", self, "/versions", None)
        return [from_json(JudgeVersion, item) for item in body.get("versions", [])]

    def agreement(self, *, version: int | None = None, page: int = 1) -> dict[str, Any]:
        """How the judge agrees with people's labels (HUMAN feedback under its name), as the API's JSON: per
        version `n`, `status` ("ok" or "insufficient" below 20 pairs), `accuracy`, `kappa`, `mae`, `spearman`
        (each `{"value", "low", "high"}`, a 95% bootstrap interval) and `confusion`; `inter_annotator` (a first
        vs a second person); and one page of `disagreements` of `version` (default: the current one)."""
        query = {"page": page, **({"version": version} if version is not None else {})}
        return self._bound()._judge_call("GET", self, "/agreement?" + "&".join(f"{k}={v}" for k, v in query.items()), None)

    def start_shadow(self, *, instructions: str, **settings: Any) -> dict[str, Any]:
        """Start a shadow version: a candidate with these `instructions` (and optionally another `model`,
        `output_type`, `categories`, `min_value`, `max_value`) that judges the same sampled items as the live
        version, counted in no chart, chip, alert or agreement. One per judge. Returns it as the API's JSON
        (`version`, `status`, `judged`, `cost_usd`, ...)."""
        body = self._bound()._judge_fields({"instructions": instructions, **settings})
        return self._bound()._judge_call("POST", self, "/shadow", body)

    def shadow(self) -> dict[str, Any]:
        """The running shadow version and what it judged and cost so far (an error when there is none)."""
        return self._bound()._judge_call("GET", self, "/shadow", None)

    def shadow_diff(self, *, page: int = 1, version: int | None = None) -> dict[str, Any]:
        """Where the shadow and the live version disagree: `compared`, `disagreements`, one page of `results`
        (both values and rationales, the human label where there is one), and `agreement_with_people` for each
        (κ with its interval and n; "insufficient" below 20 pairs). `version`: a past shadow's number."""
        query = {"page": page, **({"version": version} if version is not None else {})}
        return self._bound()._judge_call("GET", self, "/shadow/diff?" + "&".join(f"{k}={v}" for k, v in query.items()), None)

    def promote_shadow(self) -> Judge:
        """Make the shadow live: its settings become the judge's, as a new version. Returns the judge, refreshed."""
        self._bound()._judge_call("POST", self, "/shadow/promote", {})
        return self.refresh()

    def discard_shadow(self) -> dict[str, Any]:
        """Stop the shadow; its verdicts stay as history, marked shadow."""
        return self._bound()._judge_call("POST", self, "/shadow/discard", {})

    def run(self, trace_ids: list[str] | None = None, *, session_ids: list[str] | None = None) -> Job:
        """Judge these traces (trace judges) or sessions (session judges) now, whatever the sampling config and
        on/off; returns the job to `wait()` on. Up to 500 ids per job."""
        if (trace_ids is None) == (session_ids is None):
            raise ValueError("pass either trace_ids=[...] (trace judge) or session_ids=[...] (session judge)")
        body = {"trace_ids": list(trace_ids)} if trace_ids is not None else {"session_ids": list(session_ids or [])}
        return Job.from_json(self._bound()._judge_call("POST", self, "/run", body), self._client)

    def _take(self, data: dict[str, Any]) -> Judge:
        fresh = from_json(Judge, data)
        for spec in dataclasses.fields(self):
            if spec.name != "_client":
                setattr(self, spec.name, getattr(fresh, spec.name))
        return self

    def _bound(self) -> ClientLike:
        if self._client is None:
            raise RuntimeError("this Judge was built without a client; get it from Client.get_judge or register_judge")
        return self._client
