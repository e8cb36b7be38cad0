from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from evalapp.actions import create_api_token
from traces.actions import create_experiment


@pytest.fixture
def user(django_user_model):
    """An editor: may change judges and endpoints."""
    from django.contrib.auth.models import Group

    from evalapp.roles import EDITORS_GROUP

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


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user created; tests don't need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


STANDIN_KEY = "sk-standin-secret-0123456789abcdef"


@pytest.fixture
def standin():
    """The project's scripted OpenAI-compatible model, on a free port, for one test."""
    from judges.standin import StandinConfig, StandinLLM

    server = StandinLLM(StandinConfig(require_api_key=STANDIN_KEY)).start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(db, standin):
    from judges.actions import create_endpoint

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
    """Backoff without the waiting: retried calls still go over HTTP, the sleeps between them are skipped."""
    import judges.llm

    slept: list[float] = []
    original = judges.llm.complete

    def complete(*args, **kwargs):
        kwargs.setdefault("sleep", slept.append)
        return original(*args, **kwargs)

    monkeypatch.setattr(judges.llm, "complete", complete)
    monkeypatch.setattr("judges.runner.complete", complete)
    monkeypatch.setattr("judges.actions.complete", complete)
    return slept


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


def window_plan_queries() -> int:
    """Queries evalapp.overview.window_plans adds inside a test's transaction: setting the PostgreSQL planner
    options and restoring them (none on SQLite)."""
    return 2 if connection.vendor == "postgresql" else 0
