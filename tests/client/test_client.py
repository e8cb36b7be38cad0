"""evalapp_client against a live server: experiments, endpoints, judges (MLflow's register/start/update/stop),
jobs, and the errors a user sees."""

from __future__ import annotations

import socket
import threading

import pytest

from evalapp_client import (
    AuthenticationError,
    BadRequestError,
    Client,
    EvalappConnectionError,
    EvalappError,
    Job,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    SamplingConfig,
)
from judges.models import Judge as JudgeRow
from tests.conftest import STANDIN_KEY, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_readme_snippet_works_as_written(live_server, token, standin):
    with Client(live_server.url, token=token) as setup:
        setup.create_endpoint("demo-standin", "openai/evalapp-standin", api_base=standin.api_base, api_key=STANDIN_KEY)

    c = Client(live_server.url, token=token)
    exp = c.set_experiment("my-agent")  # get or create by name
    judge = c.register_judge(exp, name="user_frustration", builtin="UserFrustration", model="demo-standin")
    judge.start(SamplingConfig(sample_rate=1.0, filter_string="metadata.environment = 'production'"))
    judge = c.get_judge(exp, "user_frustration")
    judge.update(SamplingConfig(sample_rate=0.3))
    judge.stop()
    c.log_traces(exp, [make_trace("t1"), make_trace("t2", minutes=1, status="ERROR")])
    found = c.search_traces(exp, filter_string="trace.status = 'OK'")

    assert [t["trace_id"] for t in found] == ["t1"]
    stored = JudgeRow.objects.get(experiment__name="my-agent", name="user_frustration")
    assert (stored.scope, stored.builtin_key, stored.endpoint.name) == ("session", "UserFrustration", "demo-standin")
    assert (stored.active, stored.sample_rate, stored.filter_string) == (False, 0.3, "metadata.environment = 'production'")
    c.close()


def test_register_start_update_stop_keep_the_judge_object_current(client, endpoint):
    exp = client.set_experiment("my-agent", "the agent")
    assert client.set_experiment("my-agent").id == exp.id  # the second call finds it
    assert exp.description == "the agent"

    judge = client.register_judge(exp, builtin="UserFrustration", model=endpoint.name)
    assert (judge.name, judge.scope, judge.output_type, judge.categories) == (
        "user_frustration",
        "session",
        "categorical",
        ["none", "resolved", "unresolved"],
    )
    assert judge.active is False and judge.version == 1

    assert judge.start(SamplingConfig(sample_rate=1.0, filter_string="metadata.environment = 'production'")) is judge
    assert (judge.active, judge.version, judge.filter_string) == (True, 2, "metadata.environment = 'production'")
    judge.update(SamplingConfig(sample_rate=0.3))
    assert (judge.active, judge.sample_rate, judge.version) == (True, 0.3, 3)
    judge.stop()
    assert judge.active is False
    assert [v.version for v in judge.versions()] == [3, 2, 1]
    assert judge.versions()[0].config["sample_rate"] == 0.3
    assert client.get_judge(exp, "user_frustration").refresh().sample_rate == 0.3


def test_set_experiment_finds_one_created_meanwhile(client, monkeypatch):
    from traces.actions import create_experiment

    created = create_experiment("raced", "")
    monkeypatch.setattr(client, "get_experiment", _missing_once(client.get_experiment))
    assert client.set_experiment("raced").id == created.pk


def _missing_once(get_experiment):
    calls = []

    def get(experiment):
        calls.append(experiment)
        if len(calls) == 1:
            raise NotFoundError("not yet")
        return get_experiment(experiment)

    return get


def test_update_changes_sampling_without_switching_the_judge_on(client, exp, endpoint):
    judge = client.register_judge(exp.id, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name)
    judge.update(SamplingConfig(sample_rate=0.5, filter_string="trace.status = 'OK'"))
    assert (judge.active, judge.sample_rate, judge.filter_string) == (False, 0.5, "trace.status = 'OK'")
    judge.start()
    judge.update(sampling_config=SamplingConfig(sample_rate=0.25))
    assert JudgeRow.objects.get(pk=judge.id).active is True and judge.sample_rate == 0.25


def test_builtin_may_be_named_snake_case_and_the_judge_name_defaults_to_it(client, exp, endpoint):
    pii = client.register_judge(exp, builtin="pii_leakage", model=endpoint.name)
    assert (pii.name, pii.builtin_key, pii.scope) == ("pii_leakage", "PIILeakage", "trace")
    retention = client.register_judge(exp, builtin="knowledge_retention", model=f"gateway:/{endpoint.name}")
    assert (retention.name, retention.builtin_key, retention.scope, retention.endpoint) == (
        "knowledge_retention",
        "KnowledgeRetention",
        "session",
        endpoint.name,
    )
    guidelines = client.register_judge(
        exp, name="tone", builtin="ConversationalGuidelines", guidelines="Be polite.", model=endpoint.name
    )
    assert guidelines.instructions == "Be polite." and guidelines.scope == "session"
    assert [j.name for j in client.list_judges("checkout-agent")] == ["knowledge_retention", "pii_leakage", "tone"]


def test_custom_judge_changes_make_versions_and_delete_removes_it(client, exp, endpoint):
    judge = client.register_judge(
        exp,
        name="resolution",
        instructions="How did {{ conversation }} end?",
        output_type="categorical",
        categories=["solved", "escalated", "abandoned"],
        scope="session",
        model=endpoint.name,
        session_idle_seconds=600,
    )
    assert (judge.scope, judge.output_type, judge.session_idle_seconds) == ("session", "categorical", 600)

    judge.update(instructions="How did the conversation end? {{ conversation }}", daily_cost_cap_usd="2.50")
    assert (judge.version, judge.daily_cost_cap_usd) == (2, "2.50")
    assert [v.version for v in judge.versions()] == [2, 1]
    assert judge.versions()[1].config["instructions"] == "How did {{ conversation }} end?"

    judge.delete()
    with pytest.raises(NotFoundError) as caught:
        client.get_judge(exp, "resolution")
    assert caught.value.status_code == 404


def test_run_judges_traces_now_and_the_job_reports_results(client, exp, endpoint, sync_tasks):
    client.log_traces(exp, [make_trace("t1"), make_trace("t2", minutes=1)])
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} a helpful answer?", model=client.get_endpoint(endpoint.name))

    job = judge.run(trace_ids=["t1", "t2"]).wait(timeout=30)

    assert (job.status, job.judge, job.total, job.done, job.errors) == ("done", "helpful", 2, 2, 0)
    assert {r.trace_id for r in job.results} == {"t1", "t2"}
    assert all(r.value in (True, False) and r.rationale.startswith("[stand-in model]") for r in job.results)
    again = client.get_job(job.id)
    assert [r.assessment_id for r in again.results] == [r.assessment_id for r in job.results]
    assessments = client.list_assessments(exp, judge="helpful")
    assert {a["id"] for a in assessments} == {r.assessment_id for r in job.results}
    assert client.why_not_judged("t1")["helpful"].state == "judged"


def test_run_judges_a_session_by_hand(client, exp, endpoint, sync_tasks):
    client.log_traces(exp, [make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1", request={"messages": [{"role": "user", "content": "This is useless!!!"}]})])
    judge = client.register_judge(exp, builtin="UserFrustration", model=endpoint.name)
    job = judge.run(session_ids=["s1"]).wait(timeout=30)
    assert [(r.session_id, r.status, r.value) for r in job.results] == [("s1", "done", "unresolved")]
    assert client.why_not_judged_session(exp, "s1")["user_frustration"].value == "unresolved"


def test_wait_gives_up_after_its_timeout_while_the_job_is_still_queued(client, exp, endpoint, queued_tasks):
    client.log_traces(exp, [make_trace("t1")])
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name)
    job = judge.run(["t1"])
    assert job.status == "queued"
    with pytest.raises(JobTimeoutError) as caught:
        job.wait(timeout=0.3, poll_interval=0.1)
    assert isinstance(caught.value.job, Job) and caught.value.job.status == "queued"
    assert "0 of 1 done" in str(caught.value)


def test_run_refuses_ids_of_the_wrong_kind_or_unknown(client, exp, endpoint):
    client.log_traces(exp, [make_trace("t1")])
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name)
    with pytest.raises(BadRequestError) as wrong_kind:
        judge.run(session_ids=["s1"])
    assert "session_ids" in wrong_kind.value.fields
    with pytest.raises(BadRequestError) as unknown:
        judge.run(trace_ids=["t1", "nope"])
    assert "'nope'" in unknown.value.fields["trace_ids"]


def test_automatic_evaluation_judges_matching_traces_and_explains_the_rest(client, exp, endpoint, sync_tasks):
    judge = client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name)
    judge.start(SamplingConfig(sample_rate=1.0, filter_string="metadata.environment = 'production'"))
    client.log_traces(exp, [make_trace("prod"), make_trace("stage", minutes=1, metadata={"environment": "staging"})])

    assert client.why_not_judged("prod")["helpful"].state == "judged"
    stage = client.why_not_judged("stage")["helpful"]
    assert stage.state == "filtered_out" and "metadata.environment = 'production'" in stage.text
    judge.stop()
    assert client.why_not_judged("stage")["helpful"].state == "judge_off"


def test_endpoints_are_created_tested_and_updated_with_the_key_write_only(client, standin):
    created = client.create_endpoint("local", "openai/evalapp-standin", api_base=standin.api_base, api_key=STANDIN_KEY, max_concurrency=2)
    assert created.has_api_key is True and STANDIN_KEY not in repr(created) and STANDIN_KEY not in str(created.raw)
    assert [e.name for e in client.list_endpoints()] == ["local"]
    assert client.get_endpoint("local").id == created.id

    check = client.test_endpoint("local")
    assert check.ok is True and "openai/evalapp-standin" in check.message
    assert client.update_endpoint(created, max_concurrency=4).max_concurrency == 4
    client.update_endpoint(created.id, api_key="sk-wrong-wrong-wrong")
    failed = client.test_endpoint(created)
    assert failed.ok is False and failed.message.startswith("Authentication failed") and "sk-wrong" not in failed.message

    with pytest.raises(BadRequestError) as caught:
        client.create_endpoint("", "a b", api_base="ftp://x")
    assert set(caught.value.fields) == {"name", "model", "api_base"}


# --- errors ---------------------------------------------------------------------------------------------


def test_a_bad_token_is_a_401_and_the_token_appears_nowhere(live_server, exp):
    secret = "not-a-real-token-5f2c"
    with Client(live_server.url, token=secret) as bad:
        assert secret not in repr(bad)
        with pytest.raises(AuthenticationError) as caught:
            bad.list_experiments()
    error = caught.value
    assert isinstance(error, EvalappError) and error.status_code == 401
    assert "Invalid or revoked API token" in error.detail
    assert secret not in str(error) and secret not in repr(error)


def test_a_viewer_may_read_judges_but_not_register_one(client, viewer_client, exp, endpoint):
    client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name)
    assert [j.name for j in viewer_client.list_judges(exp)] == ["helpful"]
    with pytest.raises(PermissionDeniedError) as caught:
        viewer_client.register_judge(exp, builtin="Safety", model=endpoint.name)
    assert caught.value.status_code == 403
    assert not JudgeRow.objects.filter(name="safety").exists()


def test_unknown_builtin_is_a_400_naming_the_field(client, exp, endpoint):
    with pytest.raises(BadRequestError) as caught:
        client.register_judge(exp, builtin="Sarcasm", model=endpoint.name)
    error = caught.value
    assert error.status_code == 400
    assert error.fields["builtin_key"] == "unknown built-in judge 'Sarcasm'"
    assert "builtin_key: unknown built-in judge 'Sarcasm'" in str(error)


def test_every_field_error_is_reported(client, exp, endpoint):
    with pytest.raises(BadRequestError) as caught:
        client.register_judge(exp, name="x", instructions="Is {{ output }} ok?", model="no such endpoint", sample_rate=2)
    assert set(caught.value.fields) == {"instructions", "endpoint", "sample_rate"}
    message = str(caught.value)
    assert "endpoint: no model endpoint 'no such endpoint'" in message and "sample_rate:" in message


def test_unknown_judge_experiment_and_trace_are_404s(client, exp):
    with pytest.raises(NotFoundError) as judge:
        client.get_judge(exp, "missing")
    assert judge.value.status_code == 404 and judge.value.path.endswith("/judges/missing")
    with pytest.raises(NotFoundError):
        client.get_experiment(999_999)
    with pytest.raises(NotFoundError):
        client.get_experiment("no-such-experiment")
    with pytest.raises(NotFoundError):
        client.get_trace("no-such-trace")


def test_an_unreachable_server_raises_a_connection_error(token):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", token=token, timeout=2) as c, pytest.raises(EvalappConnectionError) as caught:
        c.list_experiments()
    assert caught.value.status_code is None and f"127.0.0.1:{port}" in str(caught.value) and token not in str(caught.value)


def test_the_timeout_is_the_clients(token):
    """A server that accepts the connection and never answers: the call gives up after `timeout`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    acceptor.start()
    try:
        with Client(f"http://127.0.0.1:{listener.getsockname()[1]}", token=token, timeout=0.3) as c:
            with pytest.raises(EvalappConnectionError) as caught:
                c.list_experiments()
        assert "Client(timeout=...)" in str(caught.value)
    finally:
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_token_is_required(monkeypatch):
    monkeypatch.delenv("EVALAPP_TOKEN", raising=False)
    with pytest.raises(ValueError, match="EVALAPP_TOKEN"):
        Client("http://127.0.0.1:1")


def test_context_manager_closes_the_connection(live_server, token):
    with Client(live_server.url, token=token) as c:
        assert c.list_experiments() == []
    with pytest.raises(RuntimeError):
        c.list_experiments()


def test_judge_agreement(client, exp, experiment, endpoint, user):
    from judges.actions import create_judge
    from tests.conftest import ingest, make_trace, record_verdict
    from traces.feedback import add_feedback

    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    [trace] = ingest(experiment, make_trace("t1"))
    record_verdict(judge, trace, True)
    add_feedback(user=user, name="helpful", value=False, trace=trace)
    report = client.get_judge(exp, "helpful").agreement()
    assert (report["versions"][0]["n"], report["versions"][0]["status"]) == (1, "insufficient")
    assert [d["trace_id"] for d in report["disagreements"]["results"]] == ["t1"]


def test_judge_align_waits_for_the_candidates_and_their_held_out_scores(client, exp, experiment, endpoint, user, sync_tasks):
    from tests.judges.test_align import label_politeness

    label_politeness(experiment, endpoint, user)
    judge = client.get_judge(exp, "polite")
    run = judge.align(min_labels=50, rewrite_endpoint=endpoint.name)
    assert run["status"] == "done" and float(run["cost_usd"]) > 0 and float(run["estimate_usd"]) > 0
    scores = {c["key"]: c["agreement"]["kappa"]["value"] for c in run["candidates"]}
    assert scores["rewritten"] > scores["current"]
    assert judge.use_candidate(run["id"], "rewritten") == 2
    assert judge.shadow()["settings"]["instructions"] == run["candidates"][2]["instructions"] and judge.version == 1


def test_judge_align_with_too_few_labels_says_how_many_more(client, exp, experiment, endpoint):
    from evalapp_client.errors import BadRequestError
    from judges.actions import create_judge

    create_judge(experiment, name="unlabelled", instructions="Is {{ outputs }} ok?", endpoint=endpoint)
    with pytest.raises(BadRequestError, match="Label 50 more"):
        client.get_judge(exp, "unlabelled").align()
