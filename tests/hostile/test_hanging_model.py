"""A model that accepts the connection and never answers: every call ends as a timeout after the endpoint's
timeout (per attempt: `timeout_seconds × (max_retries + 1)` at most, plus the backoff between attempts), nothing
keeps an endpoint slot, and the judging goes on as an outage (README: provider outages are retried, never recorded
as verdicts). "Try it" on the judge form makes its call in a worker, never in the web request: the page polls
until it shows "Timed out", or says that no worker took it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from judges import try_runs, worker
from judges.actions import create_judge
from judges.egress import EgressPolicy
from judges.endpoint_actions import create_endpoint
from judges.llm import TIMEOUT, EndpointConfig, complete
from judges.manual import start_job
from judges.models import EndpointSlot, Evaluation, EvaluationStatus, ModelEndpoint, TryRun
from tests.conftest import ingest, make_trace
from tests.hostile.conftest import deadline
from traces.models import Assessment

pytestmark = [pytest.mark.hostile, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 1


@dataclass
class HangingModel:
    """Listens on loopback, accepts every connection and never sends a byte."""

    port: int
    accepted: list[socket.socket] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def hanging_model() -> Iterator[HangingModel]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    model = HangingModel(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            model.accepted.append(connection)  # held open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield model
    stop.set()
    thread.join(5)
    for connection in model.accepted:
        connection.close()
    listener.close()


@pytest.fixture
def hanging_endpoint(db, hanging_model) -> ModelEndpoint:
    return create_endpoint(
        name="Hangs",
        model="openai/hangs",
        api_base=hanging_model.api_base,
        api_key="sk-hanging-0123456789",
        timeout_seconds=TIMEOUT_SECONDS,
        max_retries=1,
        is_standin=True,  # loopback is allowed for the stand-in
    )


def test_a_call_to_a_model_that_never_answers_ends_as_a_timeout(hanging_model, fast_retries):
    config = EndpointConfig(
        model="openai/hangs", api_base=hanging_model.api_base, api_key="sk-x", timeout_seconds=TIMEOUT_SECONDS, max_retries=1,
        egress=EgressPolicy(allowed_hosts=("127.0.0.1",)),  # the hanging model listens on loopback
    )
    # A guard against hanging, far above the 2 × 1 s the two attempts take (litellm's first import included).
    with deadline(60):
        result = complete(config, [{"role": "user", "content": "Is this helpful?"}], None)
    assert result.error_code == TIMEOUT
    assert result.attempts == 2 and len(hanging_model.accepted) == 2  # each attempt was a real connection, given up on
    assert result.error_message == "no answer from openai/hangs within the endpoint's timeout (1 s) (after 2 attempts)"


def test_judging_on_a_hanging_model_times_out_and_gives_the_work_back_without_holding_a_slot(experiment, hanging_endpoint, fast_retries):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=hanging_endpoint, active=False)
    ingest(experiment, make_trace("t1"))
    job = start_job(judge, trace_ids=["t1"], queue=False)
    [evaluation] = Evaluation.objects.filter(job=job)
    with deadline(60):
        worker.drain([evaluation.pk], take_more=False, budget_seconds=3)
    evaluation.refresh_from_db()
    # Not an error verdict while the provider is down: waiting for a retry, with why it failed.
    assert evaluation.status == EvaluationStatus.PENDING and evaluation.error_code == TIMEOUT
    assert evaluation.not_before is not None
    assert not Assessment.objects.exists()
    assert not EndpointSlot.objects.filter(endpoint=hanging_endpoint).exclude(holder="").exists()
    hanging_endpoint.refresh_from_db()
    assert hanging_endpoint.failing_since is not None  # the outage clock runs: it pauses after outage_retry_seconds


def test_a_hanging_model_pauses_its_endpoint_with_timed_out_as_the_reason(experiment, hanging_endpoint, fast_retries):
    from judges.endpoint_actions import update_endpoint

    update_endpoint(hanging_endpoint, outage_retry_seconds=0)  # no outage window: pause at the first failure
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=hanging_endpoint, active=False)
    ingest(experiment, make_trace("t1"))
    job = start_job(judge, trace_ids=["t1"], queue=False)
    with deadline(60):
        worker.drain(list(Evaluation.objects.filter(job=job).values_list("pk", flat=True)), take_more=False, budget_seconds=3)
    hanging_endpoint.refresh_from_db()
    assert hanging_endpoint.is_paused and hanging_endpoint.paused_reason.startswith("Timed out since")


def try_it(client, experiment, endpoint) -> tuple[str, TryRun]:
    data = {
        "scope": "trace",
        "name": "helpful",
        "instructions": "Is {{ outputs }} helpful?",
        "output_type": "boolean",
        "endpoint": str(endpoint.pk),
        "sample_rate_percent": "100",
    }
    response = client.post(reverse("judge-try-new", args=[experiment.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode(), TryRun.objects.get()


def poll(client, experiment, tried: TryRun) -> str:
    response = client.get(reverse("judge-try-result", args=[experiment.pk, tried.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_try_it_on_a_hanging_model_holds_no_web_request_and_the_page_polls_until_it_times_out(
    experiment, hanging_model, hanging_endpoint, editor_client, fast_retries
):
    ingest(experiment, make_trace("t1"))
    shown, tried = try_it(editor_client, experiment, hanging_endpoint)
    # The request only queued the call: the model has not even been connected to, and the page polls.
    assert hanging_model.accepted == [] and tried.status == TryRun.Status.QUEUED
    assert "Asking Hangs about trace" in shown and 'hx-trigger="every 2s"' in shown
    assert 'hx-trigger="every 2s"' in poll(editor_client, experiment, tried)  # still waiting: polls again

    with deadline(60):
        assert try_runs.run(str(tried.pk))  # the worker's task
    assert len(hanging_model.accepted) == 2  # two attempts, each given up after the timeout
    answer = poll(editor_client, experiment, tried)
    assert "Timed out: no answer from openai/hangs within the endpoint&#x27;s timeout (1 s)" in answer
    assert "hx-trigger" not in answer  # the answer stops the polling
    assert not Assessment.objects.exists() and not Evaluation.objects.exists()


def test_a_try_no_worker_takes_says_so_and_stops_polling(experiment, hanging_endpoint, editor_client):
    ingest(experiment, make_trace("t1"))
    _, tried = try_it(editor_client, experiment, hanging_endpoint)
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        answer = poll(editor_client, experiment, tried)
    assert "No worker answered this try in time" in answer and "hx-trigger" not in answer


def test_a_try_whose_trace_was_deleted_stops_polling(experiment, hanging_endpoint, editor_client):
    [trace] = ingest(experiment, make_trace("t1"))
    _, tried = try_it(editor_client, experiment, hanging_endpoint)
    trace.delete()
    answer = poll(editor_client, experiment, tried)
    assert "no longer there" in answer and "hx-trigger" not in answer


def test_a_viewer_cannot_try_or_poll(experiment, hanging_endpoint, editor_client, viewer, client):
    ingest(experiment, make_trace("t1"))
    _, tried = try_it(editor_client, experiment, hanging_endpoint)
    client.force_login(viewer)
    assert client.get(reverse("judge-try-result", args=[experiment.pk, tried.pk])).status_code == 403
