from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from traces.models import Experiment, Session, Span, Trace

pytestmark = pytest.mark.django_db


def run_demo(*args: str) -> str:
    out = StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo() -> Experiment:
    run_demo("--traces", "60")
    return Experiment.objects.get(name="demo-agent")


def test_demo_creates_varied_traces(demo):
    traces = Trace.objects.filter(experiment=demo)
    assert traces.count() == 60
    statuses = Counter(traces.values_list("status", flat=True))
    assert statuses["ERROR"] > 0 and statuses["OK"] > 0
    assert set(Span.objects.filter(trace__experiment=demo).values_list("span_type", flat=True)) >= {
        "AGENT",
        "RETRIEVER",
        "CHAT_MODEL",
        "TOOL",
    }
    assert {trace.metadata["environment"] for trace in traces} == {"production", "staging"}
    times = list(traces.order_by("started_at").values_list("started_at", flat=True))
    assert times[-1] - times[0] > timedelta(days=2)
    with_chat = traces.filter(spans__span_type="CHAT_MODEL").distinct()
    assert with_chat.exists() and not with_chat.filter(total_tokens__isnull=True).exists()


def test_demo_sessions_count_their_turns(demo):
    turns = Counter(Trace.objects.filter(experiment=demo).exclude(session_id="").values_list("session_id", flat=True))
    sessions = Session.objects.filter(experiment=demo)
    assert sessions.filter(trace_count__gte=2).count() >= 2
    assert {session.session_id: session.trace_count for session in sessions} == dict(turns)
    assert all(session.user_id for session in sessions)


def test_demo_with_if_missing_adds_nothing_the_second_time(demo):
    output = run_demo("--traces", "60", "--if-missing")
    assert "already has traces" in output
    assert Trace.objects.count() == 60


def test_demo_run_again_adds_new_traces(demo):
    run_demo("--traces", "10")
    assert Trace.objects.filter(experiment=demo).count() == 70


def test_demo_reset_starts_over(demo):
    run_demo("--traces", "10", "--reset")
    assert Trace.objects.filter(experiment__name="demo-agent").count() == 10
    assert not Experiment.objects.filter(pk=demo.pk).exists()


def test_demo_user_can_log_in(demo, client):
    assert client.login(username="demo", password="demo")
    assert get_user_model().objects.get(username="demo").is_staff
    from accounts.roles import can_edit

    assert not can_edit(get_user_model().objects.get(username="viewer"))


def test_demo_never_changes_an_existing_password(django_user_model):
    django_user_model.objects.create_user(username="demo", password="their-own-secret")
    run_demo("--traces", "5")
    user = django_user_model.objects.get(username="demo")
    assert user.check_password("their-own-secret") and not user.check_password("demo")


def test_demo_sets_up_the_stand_in_endpoint_and_judges_once():
    from judges.models import Judge, ModelEndpoint

    call_command("demo", "--traces", "10", stdout=StringIO())
    call_command("demo", "--traces", "10", "--if-missing", stdout=StringIO())
    endpoint = ModelEndpoint.objects.get()
    assert endpoint.is_standin and "not a real LLM" in endpoint.name
    judges = Judge.objects.filter(experiment__name="demo-agent")
    assert judges.filter(scope="trace").count() >= 4
    assert judges.filter(scope="session", builtin_key="UserFrustration").exists()
    assert all(judge.active for judge in judges)
