"""Shared by the hostile suite: a deadline for work that must not run away, traces to send, and gunicorn (the
server we deploy: it reads chunked bodies, which Django's development server and test client cannot send)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ingest, make_trace
from traces.models import Experiment


class TookTooLong(BaseException):
    """A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail (TookTooLong) if the block runs longer than `seconds`. Python's regex engine and SQLite's Python
    functions check for signals, so a runaway match is interrupted rather than waited out."""

    def expire(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ingest_named(experiment: Experiment, **names: str) -> None:
    """Traces whose trace_id is the keyword and whose name is its value."""
    ingest(experiment, *[make_trace(trace_id, name=name) for trace_id, name in names.items()])


def otlp_body(*trace_ids: str, name: str = "agent") -> bytes:
    """An OTLP/HTTP protobuf export: one root span per trace (ids are 32 hex digits)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    start = 1_795_176_000_000_000_000
    spans = [
        Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(trace_id[16:]), name=name, start_time_unix_nano=start, end_time_unix_nano=start + 10**9)
        for trace_id in trace_ids
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()


def trace_ids(count: int, prefix: str = "a") -> list[str]:
    return [f"{prefix}{n:031x}" for n in range(1, count + 1)]


ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, for another process."""
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


class Gunicorn:
    def __init__(self, port: int, log: Path):
        self.port = port
        self.log = log

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """The response, read (its body in `.data`)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            response.data = response.read()
            return response
        finally:
            connection.close()

    def post(self, path: str, body, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST `body` (bytes, or an iterable of bytes: sent chunked, with no Content-Length)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers, encode_chunked=not isinstance(body, bytes))
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def free_port() -> int:
    """A port nothing listens on (free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_gunicorn(log: Path, database: str, *, ready_status: int = 200, **env_overrides: str) -> Iterator[Gunicorn]:
    """gunicorn (one worker) on the database at URL `database`, once /healthz answers `ready_status`."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database, "EVALAPP_MAX_BODY_BYTES": str(64 * 1024), "EVALAPP_LOG_LEVEL": "WARNING", **env_overrides}
    env.pop("REDIS_URL", None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline_at = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == ready_status:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline_at:
                raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Gunicorn(port, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def gunicorn(transactional_db, tmp_path) -> Iterator[Gunicorn]:
    """gunicorn serving the test database (committed data: use with transaction=True tests)."""
    with serve_gunicorn(tmp_path / "gunicorn.log", database_url()) as server:
        yield server
