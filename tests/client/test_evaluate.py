"""`evalapp_client.evaluate` end to end: a live server, a real `qcluster` worker, the stand-in model over HTTP with
its deliberate mistakes switched off, so every verdict follows from the script below — an answer with "I don't
know" is unhelpful and scores 0.75, every other answer is helpful and scores 1.0, a record without an expected
response is not applicable to the judge that reads one, and the question "crash" makes the agent raise.
Then the CLI on the same setup: exit 0 when its gates pass, 1 when one fails, 2 for a refused request."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr

import pytest

import evalapp_client
from datasets.actions import create_dataset, merge_records
from datasets.records import RecordIn
from evalapp_client import BadRequestError, Client, PermissionDeniedError
from evaluations.models import EvaluationRun
from judges.actions import create_judge
from judges.models import RUN_PRIORITY, Evaluation
from standin import verdicts as standin_verdicts
from tests.client.evaluate_agent import agent, async_agent
from tests.e2e.test_workers import ROOT, clusters  # noqa: F401
from traces.models import Span, Trace

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = {
    "What is the refund window?": {"expected_response": "30 days"},
    "How long does shipping take?": {},
    "Do you sell unknown gadgets?": {"expected_response": "no"},
    "Can I pay with gift cards?": {"expected_response": "yes"},
    "crash": {"expected_response": "anything"},
}


@pytest.fixture
def scripted(monkeypatch, standin):
    """The stand-in makes no deliberate mistakes: its verdicts follow from the cues in the answers alone."""
    monkeypatch.setattr(standin_verdicts, "NOISE_SHARE", 0.0)
    return standin


@pytest.fixture
def setup(experiment, endpoint, scripted, clusters):  # noqa: F811
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    create_judge(experiment, name="score", instructions="Rate how well {{ outputs }} answers {{ inputs }}.", output_type="float", endpoint=endpoint)
    create_judge(
        experiment, name="matches", instructions="Does {{ outputs }} agree with {{ expectations.expected_response }}?", endpoint=endpoint
    )
    dataset = create_dataset(experiment, "support")
    merge_records(dataset, [RecordIn(inputs={"question": question}, expectations=expected) for question, expected in QUESTIONS.items()])
    worker = clusters()
    worker.wait_ready()
    return dataset


def test_evaluate_with_a_predict_function_returns_what_the_script_implies(live_server, token, experiment, setup):
    stderr = io.StringIO()
    with Client(live_server.url, token=token) as client, redirect_stderr(stderr):
        dataset = client.get_dataset(experiment.name, "support")
        result = evalapp_client.evaluate(
            data=dataset,
            predict_fn=agent,
            judges=["helpful", "score", "matches"],
            run_name="agent v2",
            gates=["helpful>=0.7", "score.mean>=0.9"],
            max_workers=3,
            client=client,
        )
    assert result.status == "done" and result.name == "agent v2"
    helpful, score, matches = (result.metrics[name] for name in ("helpful", "score", "matches"))
    assert (helpful.n, helpful.pass_rate, helpful.errors) == (4, 0.75, 0)
    assert helpful.pass_rate_low < 0.75 < helpful.pass_rate_high
    assert (score.n, score.mean) == (4, pytest.approx(0.9375))
    assert (matches.n, matches.pass_rate, matches.not_applicable) == (3, pytest.approx(2 / 3, abs=1e-4), 1)
    assert [(gate.judge, gate.passed) for gate in result.gates] == [("helpful", True), ("score", True)] and result.passed
    assert result.row_errors == 1

    rows = {row.inputs["question"]: row for row in result.rows}
    assert [row.position for row in result.rows] == [0, 1, 2, 3, 4]
    assert rows["crash"].error == "RuntimeError: the agent crashed" and rows["crash"].verdicts["helpful"].state == "missing"
    unknown = rows["Do you sell unknown gadgets?"]
    assert unknown.outputs == "I don't know." and unknown.verdicts["helpful"].passed is False
    assert "i don't know" in unknown.verdicts["helpful"].rationale.lower() and unknown.verdicts["score"].value == 0.75
    assert rows["How long does shipping take?"].verdicts["matches"].state == "not_applicable"
    assert {row.verdicts["helpful"].value for question, row in rows.items() if question not in ("crash", "Do you sell unknown gadgets?")} == {True}
    assert "predicted 5/5" in stderr.getvalue() and "judged 12/12" in stderr.getvalue()

    # One trace per row, kept apart from production, with the function's own span under the root span.
    run = EvaluationRun.objects.get(pk=result.run_id)
    traces = Trace.objects.filter(evaluation_run=run.pk)
    assert traces.count() == 5 and traces.filter(status="ERROR").count() == 1
    trace = Trace.objects.get(trace_id=rows["What is the refund window?"].trace_id)
    root, lookup = Span.objects.filter(trace=trace).order_by("started_at")
    assert (root.name, root.span_type, root.parent_span_id, lookup.name, lookup.span_type, lookup.parent_span_id) == (
        "predict", "AGENT", "", "lookup", "RETRIEVER", root.span_id,
    )
    assert trace.expectations == {"expected_response": "30 days"} and trace.duration_ms is not None
    assert set(Evaluation.objects.filter(job=run.pk).values_list("priority", flat=True)) == {RUN_PRIORITY}


def test_an_async_predict_function_and_a_failing_gate(live_server, token, experiment, setup):
    with Client(live_server.url, token=token) as client:
        result = client.evaluate(
            [{"inputs": {"question": question}} for question in list(QUESTIONS)[:3]],
            async_agent,
            ["helpful"],
            experiment=experiment.name,
            gates=["helpful>=90%"],
            progress=False,
        )
    assert result.metrics["helpful"].pass_rate == pytest.approx(2 / 3, abs=1e-4)
    [gate] = result.gates
    assert (gate.threshold, gate.passed, result.passed) == (0.9, False, False)
    assert "FAIL" in result.summary() and "n=3" in result.summary()
    with Client(live_server.url, token=token) as client:
        again = client.get_evaluation(result.run_id)
    assert (again.passed, again.metrics["helpful"].n, [row.outputs for row in again.rows]) == (False, 3, [row.outputs for row in result.rows])


def test_a_predict_function_that_hangs_is_an_error_row_and_the_run_goes_on(live_server, token, experiment, setup):
    def slow(question: str) -> str:
        if "shipping" in question:
            import time

            time.sleep(5)
        return agent(question)

    with Client(live_server.url, token=token) as client:
        result = client.evaluate(
            [{"inputs": {"question": q}} for q in ("What is the refund window?", "How long does shipping take?")],
            slow,
            ["helpful"],
            experiment=experiment.pk,
            timeout=1,
            progress=False,
        )
    rows = {row.inputs["question"]: row for row in result.rows}
    assert rows["How long does shipping take?"].error == "TimeoutError: predict_fn took longer than 1 s"
    assert rows["What is the refund window?"].verdicts["helpful"].value is True and result.metrics["helpful"].n == 1


def cli(live_server, token, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "evalapp_client", "evaluate", "--url", live_server.url, "--token", token, "--no-progress", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_the_cli_exits_zero_when_the_gates_pass_and_one_when_a_gate_fails(live_server, token, experiment, setup):
    common = ["--experiment", experiment.name, "--dataset", "support", "--predict", "tests.client.evaluate_agent:agent", "--judge", "helpful"]
    passed = cli(live_server, token, *common, "--gate", "helpful>=0.7")
    assert passed.returncode == 0, passed.stderr
    assert "PASS  helpful pass_rate 0.75 >= 0.7 (n=4)" in passed.stdout and "PASSED" in passed.stdout
    failed = cli(live_server, token, *common, "--gate", "helpful>=0.8", "--name", "strict")
    assert failed.returncode == 1, failed.stderr
    assert "FAIL  helpful pass_rate 0.75 >= 0.8 (n=4)" in failed.stdout
    refused = cli(live_server, token, *common, "--gate", "nobody>=0.8")
    assert refused.returncode == 2 and "not one of this run's judges" in refused.stderr
    assert EvaluationRun.objects.count() == 2


def test_bad_input_and_viewers_are_refused_with_4xx(live_server, token, viewer, experiment, endpoint):
    from accounts.actions import create_api_token

    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    with Client(live_server.url, token=token) as client:
        with pytest.raises(BadRequestError, match="no dataset 'missing'"):
            client.evaluate("missing", agent, ["helpful"], experiment=experiment.pk, progress=False)
        with pytest.raises(BadRequestError, match="is empty"):
            client.evaluate([], agent, ["helpful"], experiment=experiment.pk, progress=False)
    _, raw = create_api_token(viewer, "viewer")
    with Client(live_server.url, token=raw) as viewer_client, pytest.raises(PermissionDeniedError, match="viewer"):
        viewer_client.evaluate([{"inputs": {"question": "hi"}}], agent, ["helpful"], experiment=experiment.pk, progress=False)
    assert not EvaluationRun.objects.exists()


def test_an_interrupted_evaluation_cancels_its_run(live_server, token, experiment, endpoint, monkeypatch):
    import evalapp_client.evaluation

    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evalapp_client.evaluation, "_predict_all", interrupted)
    with Client(live_server.url, token=token) as client, pytest.raises(KeyboardInterrupt):
        client.evaluate([{"inputs": {"question": "hi"}}], agent, ["helpful"], experiment=experiment.pk, progress=False)
    assert EvaluationRun.objects.get().status == "cancelled"


def test_the_first_predictions_are_sent_after_one_round_of_the_pool_so_judging_starts_at_once():
    """Later ones go in batches (every 0.5 s or 200); the first batch waits for nothing but one round of calls."""
    import time

    from evalapp_client.evaluation import _predict_all, _Progress

    sent: list[tuple[float, int]] = []
    started = time.monotonic()

    class Recorder:
        def request(self, method, url, *, body, compress):
            sent.append((time.monotonic() - started, len(body["predictions"])))

    def predict(question):
        time.sleep(0.05)
        return f"answer to {question}"

    rows = [{"position": n, "inputs": {"question": f"q{n}"}} for n in range(40)]
    _predict_all(Recorder(), "/predictions", rows, predict, max_workers=5, timeout=None, progress=_Progress(False))
    assert sum(count for _, count in sent) == 40
    first_at, first_count = sent[0]
    assert 5 <= first_count < 20 and first_at < 0.3  # a round or two of 50 ms, not FLUSH_SECONDS (0.5 s)
    assert len(sent) <= 3  # then the rest in batches (all made at ~0.4 s, or a timed flush first on a busy machine)


def test_waiting_for_the_verdicts_knows_the_end_within_a_tenth_of_a_second_without_polling_all_the_time(monkeypatch):
    """The client looks every 0.2 → 0.5 s, and sooner once the verdicts still missing will be in sooner at the rate
    they have been coming: here 1,000 judgements at 60/s, the last in at 16.67 s (with looks every 0.5 s the client
    learnt it 0.28 s later)."""
    from evalapp_client import evaluation

    clock = [0.0]
    looks: list[float] = []
    total, rate = 1000, 60.0

    class FakeTime:
        @staticmethod
        def monotonic():
            return clock[0]

        @staticmethod
        def sleep(seconds):
            clock[0] += seconds

    class Server:
        def request(self, method, url):
            looks.append(clock[0])
            done = min(total, int(rate * clock[0]))
            return {"name": "r", "status": "done" if done == total else "judging", "summary": {"done": done, "total": total}}

    monkeypatch.setattr(evaluation, "time", FakeTime)
    run = evaluation._wait(Server(), "/run", 3600, evaluation._Progress(False))
    last_verdict = total / rate
    assert run["status"] == "done"
    assert 0 <= looks[-1] - last_verdict <= 0.11
    assert len(looks) <= last_verdict / 0.5 + 10  # half-second looks while the end is far
