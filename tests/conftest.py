from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.actions import create_api_token
from traces.actions import create_experiment, ingest_traces
from traces.models import Assessment, Session, Trace
from traces.payload import parse_trace_batch


@pytest.fixture
def user(django_user_model):
    """An editor: may change judges and endpoints."""
    from django.contrib.auth.models import Group

    from accounts.roles import EDITORS_GROUP

    pat = django_user_model.objects.create_user(username="pat", password="pat-password-123")
    pat.groups.add(Group.objects.get_or_create(name=EDITORS_GROUP)[0])
    return pat


@pytest.fixture
def viewer(django_user_model):
    """A viewer: may read everything, change nothing."""
    return django_user_model.objects.create_user(username="vic", password="vic-password-123")


@pytest.fixture
def viewer_api(viewer) -> APIClient:
    _, raw = create_api_token(viewer, "viewer tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


@pytest.fixture
def token(user) -> str:
    _, raw = create_api_token(user, "tests")
    return raw


@pytest.fixture
def api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def editor_client(client, user):
    """The Django test client, logged in as the editor "pat"."""
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    """The Django test client, logged in as the viewer "vic"."""
    client.force_login(viewer)
    return client


@pytest.fixture
def experiment(db):
    return create_experiment("checkout-agent", "the agent behind checkout")


BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_trace(trace_id: str, *, minutes: int = 0, session_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A realistic JSON-API trace: an agent root with a retriever and a chat-model child."""
    start = BASE_TIME + timedelta(minutes=minutes)
    span_times = lambda offset, length: {  # noqa: E731
        "start_time": (start + timedelta(milliseconds=offset)).isoformat(),
        "end_time": (start + timedelta(milliseconds=offset + length)).isoformat(),
    }
    trace: dict[str, Any] = {
        "trace_id": trace_id,
        "metadata": {"environment": "production"},
        "spans": [
            {
                "span_id": f"{trace_id}-root",
                "name": "agent",
                "span_type": "AGENT",
                **span_times(0, 1200),
                "status": "OK",
                "inputs": {"messages": [{"role": "user", "content": f"question {trace_id}"}]},
                "outputs": {"content": f"answer {trace_id}"},
            },
            {
                "span_id": f"{trace_id}-retrieve",
                "parent_span_id": f"{trace_id}-root",
                "name": "search_docs",
                "span_type": "RETRIEVER",
                **span_times(10, 200),
                "inputs": {"query": "returns"},
                "outputs": [{"page_content": "Returns are accepted within 30 days."}],
            },
            {
                "span_id": f"{trace_id}-llm",
                "parent_span_id": f"{trace_id}-root",
                "name": "chat",
                "span_type": "CHAT_MODEL",
                **span_times(220, 900),
                "attributes": {"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30},
            },
        ],
    }
    if session_id:
        trace["session_id"] = session_id
    trace.update(fields)
    return trace


def ingest(experiment, *traces: dict[str, Any]) -> list[Trace]:
    """Store JSON-API traces (`make_trace`) the way the API does: parsed by its payload parser, written by
    `traces.actions.ingest_traces`. Returns the stored traces, oldest first."""
    ingest_traces(experiment, parse_trace_batch(list(traces), max_traces=max(1, len(traces))))
    return traces_of(experiment, *(trace["trace_id"] for trace in traces))


def traces_of(experiment, *trace_ids: str) -> list[Trace]:
    """The experiment's traces with these ids (all of them without ids), oldest first."""
    found = Trace.objects.filter(experiment=experiment)
    if trace_ids:
        found = found.filter(trace_id__in=trace_ids)
    return list(found.order_by("started_at", "pk"))


def record_verdict(
    judge, target, value: Any = None, *, error_code: str = "", rationale: str = "", cost: str | None = "0.001"
) -> Assessment:
    """A judge's verdict on a trace or session, written by `judges.results.record_result` as a worker writes it:
    a verdict recorded earlier by the same judge on the same target becomes history (`valid=False`)."""
    from judges.llm import CallResult
    from judges.results import Outcome, record_result

    result = CallResult(
        value=None if error_code else value,
        rationale=rationale,
        error_code=error_code,
        error_message=f"{error_code} (recorded by a test)" if error_code else "",
        cost_usd=None if cost is None else Decimal(cost),
    )
    where = {"session": target} if isinstance(target, Session) else {"trace": target}
    return record_result(judge, Outcome(result), **where)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user created; tests don't need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


STANDIN_KEY = "sk-standin-secret-0123456789abcdef"


@pytest.fixture
def standin():
    """The project's scripted OpenAI-compatible model, on a free port, for one test."""
    from standin.server import StandinConfig, StandinLLM

    server = StandinLLM(StandinConfig(require_api_key=STANDIN_KEY)).start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(db, standin):
    from judges.endpoint_actions import create_endpoint

    return create_endpoint(
        name="Stand-in (test)",
        model="openai/evalapp-standin",
        api_base=standin.api_base,
        api_key=STANDIN_KEY,
        timeout_seconds=5,
        max_retries=2,
        input_cost_per_million="0.40",
        output_cost_per_million="1.60",
        is_standin=True,
    )


@pytest.fixture
def fast_retries(monkeypatch):
    """Backoff without the waiting, on every path (by hand, the worker, Try it): retried calls still go over HTTP,
    the sleeps between them are recorded instead of slept."""
    import judges.llm
    import judges.outages

    slept: list[float] = []
    monkeypatch.setattr(judges.llm, "backoff_sleep", slept.append)
    # Work given back after a provider failure is tried again within a fraction of a second, not seconds.
    monkeypatch.setattr(judges.outages, "FIRST_RETRY_SECONDS", 0.05)
    monkeypatch.setattr(judges.outages, "MIN_RETRY_SECONDS", 0.05)
    return slept


def judge_now(judge, target):
    """Judge one trace or session the way the `run_judge` command does (a job, judged in this process with the
    endpoint's limits); returns the assessment it recorded."""
    from judges.manual import judge_by_hand
    from traces.models import Session

    ids = {"session_ids": [target.session_id]} if isinstance(target, Session) else {"trace_ids": [target.trace_id]}
    [evaluation] = judge_by_hand(judge, **ids)
    assert evaluation.assessment is not None, f"not judged: {evaluation.status} {evaluation.error_message}"
    return evaluation.assessment


def judge_pending(ids: list[int] | None = None, *, limit: int | None = None) -> int:
    """What a worker's task does with pending work (judges.worker.drain), for exactly `ids` (default: everything
    pending), at most `limit` of them; returns how many results were recorded."""
    from judges import worker
    from judges.models import Evaluation, EvaluationStatus

    if ids is None:
        ids = list(Evaluation.objects.filter(status=EvaluationStatus.PENDING).values_list("pk", flat=True))
    if not ids:
        return 0
    return worker.drain(ids, take_more=False, max_in_flight=max(1, min(limit or 64, len(ids))))


@pytest.fixture(autouse=True)
def _fresh_failure_counts(settings):
    """Each test counts failed logins and tokens afresh (accounts.throttle): the counts outlive a test in Redis and
    in the cache table, and one test's wrong passwords must not lock the next one out."""
    from uuid import uuid4

    settings.CACHES = {**settings.CACHES, "throttle": {**settings.CACHES["throttle"], "KEY_PREFIX": f"test-{uuid4().hex}"}}


@pytest.fixture(scope="session", autouse=True)
def _remove_sqlite_leftovers():
    """SQLite's -wal/-shm files can outlive the test database when a killed worker held it open."""
    yield
    import glob
    import os

    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for leftover in glob.glob(f"{name}-*"):
            os.remove(leftover)
        # The test database's ingest slots (traces.admission): a folder per run, its name has the process id.
        import shutil

        from traces.admission import slot_directory_for

        shutil.rmtree(slot_directory_for({**settings.DATABASES["default"], "NAME": name}), ignore_errors=True)


def window_plan_queries() -> int:
    """Queries evalapp.overview.sql.window_plans adds inside a test's transaction: setting the PostgreSQL planner
    options and restoring them (none on SQLite)."""
    return 2 if connection.vendor == "postgresql" else 0


def links_static(html: str, name: str) -> bool:
    """Whether a page links the static file `name` (a stylesheet or a script): itself, or the one bundle that holds
    it (evalapp/bundles.py: a page links one stylesheet and one script)."""
    from evalapp.bundles import BUNDLES

    linked = [bundle for bundle, parts in BUNDLES.items() if name in parts and f'"/static/{bundle}"' in html]
    return bool(linked) or f'"/static/{name}"' in html
