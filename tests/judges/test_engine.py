"""Automatic evaluation, driven in-process: selection, sampling, claiming, leases, sessions, sweeps."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from judges import queue, receivers, selection, tasks, worker
from judges import sweep as sweeping
from judges.actions import create_judge, update_judge
from judges.endpoint_actions import update_endpoint
from judges.models import Evaluation, Judge, ModelEndpoint
from judges.sampling import is_sampled
from judges.states import session_state, trace_state
from tests.conftest import ingest, judge_pending, make_trace
from traces.actions import ingest_traces
from traces.models import Assessment, Session, Trace
from traces.records import TraceIn

pytestmark = pytest.mark.django_db(transaction=True)


def helpful(experiment, endpoint, **fields) -> Judge:
    defaults = {"name": "helpful", "instructions": "Is {{ outputs }} a helpful answer to {{ inputs }}?", "active": True}
    return create_judge(experiment, endpoint=endpoint, **{**defaults, **fields})


def pks(traces: list[Trace]) -> list[int]:
    return [trace.pk for trace in traces]


def run_ingest_task(traces: list[Trace]) -> int:
    """What ingest's commit and the task it queues do: select, then judge."""
    ids = selection.select_traces(traces[0].experiment_id, pks(traces))
    return tasks.judge_evaluations(ids) if ids else 0


def test_ingested_trace_is_judged_once(experiment, endpoint, standin):
    judge = helpful(experiment, endpoint)
    stored = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    assert run_ingest_task(stored) == 2
    assert run_ingest_task(stored) == 0  # a duplicate task finds nothing left to do
    assert Assessment.objects.filter(name="helpful", valid=True).count() == 2
    assert Evaluation.objects.filter(judge=judge, status="done").count() == 2
    state = trace_state(judge, Trace.objects.get(trace_id="t1"))
    assert state.state == "judged" and state.value in (True, False)


def test_sampling_is_deterministic_and_within_statistical_bounds(experiment, endpoint):
    judge = helpful(experiment, endpoint, sample_rate=0.3)
    traces = [TraceIn(trace_id=f"s{n}", started_at=timezone.now(), ended_at=timezone.now()) for n in range(2000)]
    for start in range(0, 2000, 500):
        ingest_traces(experiment, traces[start : start + 500])
    pks = list(Trace.objects.values_list("pk", flat=True))
    first = set(selection.select_traces(experiment.pk, pks))
    # Binomial(2000, 0.3): mean 600, sd 20.5; ±5 sd fails by chance about once in 3 million runs.
    assert 497 <= len(first) <= 703
    chosen = set(Evaluation.objects.values_list("trace__trace_id", flat=True))
    assert chosen == {t.trace_id for t in traces if judge.should_sample(t.trace_id)}
    assert set(selection.select_traces(experiment.pk, pks)) == first  # same decision every time

    judge = update_judge(judge, sample_rate=0.5)
    selection.select_traces(experiment.pk, pks)
    assert set(Evaluation.objects.values_list("trace__trace_id", flat=True)) == chosen  # an edit leaves old traffic be
    newer = [TraceIn(trace_id=f"n{n}", started_at=timezone.now(), ended_at=timezone.now()) for n in range(400)]
    ingest_traces(experiment, newer)
    at_half = {t.trace_id for t in newer if judge.should_sample(t.trace_id)}
    assert {t.trace_id for t in newer if is_sampled(t.trace_id, judge.name, 0.3)} < at_half  # raising only adds
    assert set(Evaluation.objects.filter(trace__trace_id__startswith="n").values_list("trace__trace_id", flat=True)) == at_half
    sampled_out = next(t for t in newer if t.trace_id not in at_half)
    assert trace_state(judge, Trace.objects.get(trace_id=sampled_out.trace_id)).state == "sampled_out"


def test_filter_too_old_in_progress_and_off_are_explained(experiment, endpoint):
    ingest(experiment, make_trace("old"))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        judge = helpful(experiment, endpoint, filter_string="metadata.environment = 'staging'")
        ingest(
            experiment,
            make_trace("prod"),
            make_trace("staging", metadata={"environment": "staging"}),
            {"trace_id": "open", "spans": [{"span_id": "child", "parent_span_id": "root", "start_time": "2026-11-20T12:00:00Z"}]},
        )
        selection.select_traces(experiment.pk, list(Trace.objects.values_list("pk", flat=True)))
        states = {t.trace_id: trace_state(judge, t).state for t in Trace.objects.all()}
        assert states == {"old": "too_old", "prod": "filtered_out", "staging": "pending", "open": "in_progress"}
        assert "metadata.environment = 'staging'" in trace_state(judge, Trace.objects.get(trace_id="prod")).text

        update_judge(judge, active=False)
        assert Evaluation.objects.get().status == "cancelled"  # switching off drops queued work at once
        assert trace_state(Judge.objects.get(), Trace.objects.get(trace_id="prod")).state == "judge_off"


def test_a_dead_workers_evaluations_are_reclaimed_and_never_doubled(experiment, endpoint, standin, settings):
    settings.EVALAPP_LEASE_SECONDS = 5
    helpful(experiment, endpoint)
    stored = ingest(experiment, make_trace("t1"))
    ids = selection.select_traces(experiment.pk, pks(stored))
    dead_token, claimed = worker.claim(ids)
    assert [e.status for e in claimed] == ["running"]
    assert worker.claim(ids)[1] == []  # nobody else can take it while the lease holds

    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        reclaimed, abandoned = sweeping.reclaim_expired()
        assert (reclaimed, abandoned) == (ids, 0)
        assert judge_pending(ids) == 1
    # The "dead" worker wakes up and tries to record its result: refused.
    from judges.llm import CallResult
    from judges.results import Outcome

    assert worker.finish(claimed[0], dead_token, Outcome(CallResult(value=True))) is False
    assert Assessment.objects.count() == 1
    assert Evaluation.objects.get().attempts == 2


def test_work_abandoned_three_times_becomes_a_visible_error(experiment, endpoint, settings):
    settings.EVALAPP_LEASE_SECONDS = 5
    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, make_trace("t1"))))
    for attempt in range(3):
        worker.claim(ids)
        with time_machine.travel(timezone.now() + timedelta(seconds=10 * (attempt + 1))):
            sweeping.reclaim_expired()
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "error"
    assert "stopped 3 times" in evaluation.error_message


def test_session_is_judged_when_idle_and_rejudged_after_a_new_turn(experiment, endpoint, standin):
    judge = create_judge(experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint, active=True, session_idle_seconds=60)
    ingest(experiment, make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1", response="It's useless!!!"))
    session = Session.objects.get()
    assert selection.select_sessions() == []
    assert session_state(judge, session).state == "waiting_for_idle"

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        ids = selection.select_sessions()
        assert len(ids) == 1
        judge_pending(ids)
    first = Assessment.objects.get(session=session)
    assert session_state(judge, session).state == "judged"

    with time_machine.travel(timezone.now() + timedelta(seconds=120)):
        ingest(experiment, make_trace("t3", minutes=2, session_id="s1", response="Thanks, that fixed it."))
        session.refresh_from_db()
        assert session_state(judge, session).state == "waiting_for_idle"
    with time_machine.travel(timezone.now() + timedelta(seconds=200)):
        judge_pending(selection.select_sessions())
    first.refresh_from_db()
    second = Assessment.objects.get(session=session, valid=True)
    assert first.valid is False and second.overrides_id == first.pk
    assert sorted(Evaluation.objects.values_list("session_generation", flat=True)) == [2, 3]


def test_sweep_catches_traces_whose_selection_was_lost(experiment, endpoint, standin):
    from traces.signals import traces_ingested

    helpful(experiment, endpoint)
    traces_ingested.disconnect(dispatch_uid="judges-on-ingest")  # as if the web process died right after commit
    try:
        ingest(experiment, make_trace("t1"))
    finally:
        traces_ingested.connect(receivers.traces_ingested, dispatch_uid="judges-on-ingest")
    assert not Evaluation.objects.exists()
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        report = sweeping.sweep()
    assert report.traces_examined == 1
    assert Evaluation.objects.get().status == "pending"


def test_sweep_passes_over_traces_every_judge_already_has_work_for(experiment, endpoint, monkeypatch):
    """Its second look re-read and re-decided every trace written in the last minute (0.3–1.2 s a sweep at bench load,
    all that time holding a lone worker process from a burst): only traces some judge has no work for are decided."""
    from traces.signals import traces_ingested

    helpful(experiment, endpoint)
    helpful(experiment, endpoint, name="polite")
    ingest(experiment, *(make_trace(f"s{n}", minutes=n) for n in range(5)))  # selected at ingest: 10 evaluations
    traces_ingested.disconnect(dispatch_uid="judges-on-ingest")  # this one's selection is lost
    try:
        ingest(experiment, make_trace("lost", minutes=9))
    finally:
        traces_ingested.connect(receivers.traces_ingested, dispatch_uid="judges-on-ingest")
    decided = []
    real_decide = selection.decide_trace
    monkeypatch.setattr(selection, "decide_trace", lambda judge, trace, record: decided.append(trace.trace_id) or real_decide(judge, trace, record))
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        report = sweeping.sweep()
    assert report.traces_examined == 6
    assert decided == ["lost", "lost"]  # once per judge, for the trace without work only
    assert Evaluation.objects.filter(trace__trace_id="lost").count() == 2 and Evaluation.objects.count() == 12


def test_sweep_reenqueues_pending_work_whose_task_was_lost(experiment, endpoint, monkeypatch):
    monkeypatch.setattr(queue, "enqueue", lambda *args, **kwargs: (_ for _ in ()).throw(ConnectionError("broker down")))
    helpful(experiment, endpoint)
    ingest(experiment, make_trace("t1"))  # selected at ingest; the enqueue failed and was logged
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "pending"
    assert sweeping.sweep().pending_ids == []  # fresh: its task may still be on its way
    with time_machine.travel(timezone.now() + timedelta(seconds=60)):
        assert sweeping.sweep().pending_ids == [evaluation.pk]


def test_authentication_failure_pauses_and_the_fixed_key_resumes(experiment, endpoint, standin):
    judge = helpful(experiment, endpoint)
    update_endpoint(endpoint, api_key="sk-wrong-wrong-wrong")
    stored = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    ids = selection.select_traces(experiment.pk, pks(stored))
    judge_pending(ids[:1])
    judge.refresh_from_db()
    assert judge.is_paused
    assert worker.claim(ids)[1] == []  # paused: the rest waits instead of failing one by one
    assert trace_state(judge, Trace.objects.get(trace_id="t2")).state == "paused"  # queued, waiting for the fix
    update_endpoint(endpoint, api_key="sk-standin-secret-0123456789abcdef")
    assert judge_pending(ids) == 1
    assert Assessment.objects.filter(error_code="").count() == 1


def test_daily_spend_cap_stops_judging_and_says_so(experiment, endpoint, standin):
    helpful(experiment, endpoint, daily_cost_cap_usd="0.0001")
    stored = ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(5)])
    judge_pending(selection.select_traces(experiment.pk, pks(stored)), limit=1)
    ids = list(Evaluation.objects.filter(status="pending").values_list("pk", flat=True))
    judge_pending(ids)
    capped = Assessment.objects.filter(error_code="budget_exceeded")
    assert capped.count() == 4
    assert "daily spend cap of $0.0001 was reached" in capped.first().error_message
    assert Assessment.objects.filter(error_code="").count() == 1


def test_switching_a_judge_on_judges_the_last_hour(experiment, endpoint, standin):
    ingest(experiment, make_trace("recent"))
    judge = helpful(experiment, endpoint, active=False)
    update_judge(judge, active=True)
    assert tasks.backfill(judge.pk) == 1
    assert Evaluation.objects.get().trace.trace_id == "recent"


def test_endpoint_concurrency_limit_holds_across_workers(experiment, endpoint, standin):
    import threading

    from judges.endpoint_actions import update_endpoint

    update_endpoint(endpoint, max_concurrency=2)
    standin.config.latency_ms = 300
    helpful(experiment, endpoint)
    stored = ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(8)])
    ids = selection.select_traces(experiment.pk, pks(stored))
    # Two "workers" (as two qclusters would), each with a batch of its own.
    def worker(part):
        try:
            judge_pending(part)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(part,)) for part in (ids[:4], ids[4:])]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert Assessment.objects.count() == 8
    starts = sorted(request["received_at"] for request in standin.requests)
    busiest = max(sum(1 for other in starts if start <= other < start + 0.29) for start in starts)
    assert busiest <= 2


def test_requests_per_minute_budget_is_shared(endpoint):
    from judges import limits
    from judges.endpoint_actions import update_endpoint

    update_endpoint(endpoint, requests_per_minute=3)
    endpoint.refresh_from_db()
    with time_machine.travel(timezone.now().replace(second=5, microsecond=0), tick=False):
        assert [limits.take_minute_budget(endpoint) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limits.take_minute_budget(endpoint) == pytest.approx(55, abs=0.01)
    with time_machine.travel(timezone.now().replace(second=5, microsecond=0) + timedelta(minutes=1), tick=False):
        assert limits.take_minute_budget(endpoint) == 0.0


def test_the_sweep_schedule_is_created_once():
    from django_q.models import Schedule

    tasks.ensure_schedule()
    tasks.ensure_schedule()
    schedule = Schedule.objects.get(name=tasks.SWEEP_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("judges.tasks.sweep", Schedule.MINUTES, 1)


def test_sweep_pages_through_a_burst_larger_than_its_cap(experiment, endpoint):
    from traces.signals import traces_ingested

    helpful(experiment, endpoint)
    traces_ingested.disconnect(dispatch_uid="judges-on-ingest")
    try:
        ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(8)])  # one burst, one updated_at
    finally:
        traces_ingested.connect(receivers.traces_ingested, dispatch_uid="judges-on-ingest")
    later = timezone.now() + timedelta(seconds=30)
    with time_machine.travel(later):
        examined = [sweeping.sweep_traces(max_traces=5) for _ in range(3)]
    assert examined[:2] == [5, 3]
    assert Evaluation.objects.count() == 8


def test_a_failing_evaluation_is_recorded_not_retried_in_a_loop(experiment, endpoint, standin, monkeypatch):
    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))))
    calls = []

    def broken(judge, prepared):
        first = "answer t1" in str(prepared.prompt.messages)
        calls.append(ids[0] if first else ids[1])
        if first:
            raise OverflowError("int too large to convert to float")
        return original(judge, prepared)

    original = worker.call_model
    monkeypatch.setattr(worker, "call_model", broken)
    worker.drain(ids, budget_seconds=2)
    assert calls.count(ids[0]) == 1
    assert Evaluation.objects.get(pk=ids[0]).error_message.startswith("internal error: OverflowError")
    assert Evaluation.objects.get(pk=ids[1]).status == "done"


def test_drain_gives_work_back_when_its_time_is_up_waiting_for_a_slot(experiment, endpoint, standin):
    from judges import limits
    from judges.endpoint_actions import update_endpoint

    update_endpoint(endpoint, max_concurrency=1)
    endpoint.refresh_from_db()
    limits.ensure_slots(endpoint)
    assert limits.try_acquire(endpoint, "another-worker") is not None  # the only slot, held elsewhere
    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, make_trace("t1"))))
    began = time.monotonic()
    assert worker.drain(ids, budget_seconds=1) == 0
    assert time.monotonic() - began < 3
    evaluation = Evaluation.objects.get()
    assert (evaluation.status, evaluation.attempts) == ("pending", 0)


def test_unreadable_key_is_a_configuration_error_and_the_rest_of_the_batch_is_judged(experiment, endpoint, standin, db):
    from judges.endpoint_actions import create_endpoint

    broken = create_endpoint(name="broken", model="openai/x", api_base=standin.api_base, api_key="k")
    from judges.models import ModelEndpoint

    ModelEndpoint.objects.filter(pk=broken.pk).update(api_key_encrypted="gAAAAA-not-a-token")
    helpful(experiment, endpoint)
    helpful(experiment, broken, name="broken-judge")
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, make_trace("t1"))))
    worker.drain(ids, budget_seconds=5)
    outcomes = dict(Evaluation.objects.values_list("judge__name", "error_code"))
    assert outcomes == {"helpful": "", "broken-judge": "configuration"}
    assert not Evaluation.objects.filter(status="running").exists()


def test_after_an_authentication_failure_the_rest_waits_for_the_fix(experiment, endpoint, standin):
    from judges.endpoint_actions import update_endpoint

    update_endpoint(endpoint, api_key="sk-wrong-wrong-wrong", max_concurrency=1)
    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(5)])))
    worker.drain(ids, budget_seconds=5)
    assert Evaluation.objects.filter(error_code="authentication").count() == 1
    assert Evaluation.objects.filter(status="pending").count() == 4


def test_live_traces_are_claimed_before_a_switched_on_judges_look_back(experiment, endpoint):
    ingest(experiment, *[make_trace(f"old{n}", minutes=n) for n in range(5)])
    look_back = helpful(experiment, endpoint, name="new-judge", active=False)
    update_judge(look_back, active=True)
    assert tasks.backfill(look_back.pk) == 5  # an hour's look-back, queued first
    live = helpful(experiment, endpoint, name="live-judge", active=False)
    Judge.objects.filter(pk=live.pk).update(active=True, enabled_at=timezone.now())
    ingest(experiment, make_trace("now", minutes=30))  # a trace arriving now, for both judges
    _, claimed = worker.claim(None, limit=2)
    assert {(evaluation.judge.name, evaluation.trace.trace_id) for evaluation in claimed} == {("new-judge", "now"), ("live-judge", "now")}


def test_a_saved_filter_that_no_longer_parses_excludes_its_judge_only(experiment, endpoint):
    broken = helpful(experiment, endpoint, name="broken", filter_string="trace.name = 'x'")
    Judge.objects.filter(pk=broken.pk).update(filter_string="(" * 30 + "trace.name = 'x'" + ")" * 30)  # saved before today's limits
    working = helpful(experiment, endpoint, name="working")
    stored = ingest(experiment, make_trace("t1"))
    assert set(Evaluation.objects.values_list("judge__name", flat=True)) == {"working"}  # the other judge went on
    state = trace_state(Judge.objects.get(pk=broken.pk), stored[0])
    assert state.state == "filtered_out" and "can't be used any more" in state.text and "edit the judge" in state.text
    assert working.pk


def test_editing_an_active_judge_judges_new_traffic_only(experiment, endpoint):
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        judge = helpful(experiment, endpoint, sample_rate=0.0)  # on for three days, sampling nothing
        ingest(experiment, *[make_trace(f"old{n}", minutes=n) for n in range(5)])
    with time_machine.travel(timezone.now() - timedelta(minutes=30)):
        ingest(experiment, make_trace("recent", minutes=10))
    update_judge(judge, sample_rate=1.0)  # raised to 100%
    assert tasks.backfill(judge.pk) == 0  # nothing old is queued (an explicit backfill is another matter)
    assert not Evaluation.objects.exists()
    state = trace_state(Judge.objects.get(pk=judge.pk), Trace.objects.get(trace_id="recent"))
    assert state.state == "too_old" and "settings last changed (v2)" in state.text  # no false "about to be queued"
    ingest(experiment, make_trace("new", minutes=40))
    assert list(Evaluation.objects.values_list("trace__trace_id", flat=True)) == ["new"]


def test_a_new_model_on_the_endpoint_makes_a_new_version_of_its_judges(experiment, endpoint):
    judge = helpful(experiment, endpoint)
    update_endpoint(endpoint, model="openai/evalapp-standin-2", api_key="sk-standin-secret-0123456789abcdef")
    judge.refresh_from_db()
    assert judge.version == 2
    assert judge.versions.get(version=2).config["model"] == "openai/evalapp-standin-2"  # the chart's version mark


def test_a_burst_is_claimed_in_growing_rounds_while_every_claimed_call_can_start(experiment, endpoint, standin, monkeypatch):
    """A task's own work (one ingest's) is claimed at once; more work 8 at a time while some must wait for a slot
    (live work arriving meanwhile isn't stuck behind a hoard), but doubling while all claimed work starts at once:
    50 traces in 3 claims (8, 16, 26), not 7."""
    update_endpoint(endpoint, max_concurrency=64)
    helpful(experiment, endpoint)
    stored = ingest(experiment, *(make_trace(f"b{n}", minutes=n % 50) for n in range(50)))
    ids = selection.select_traces(experiment.pk, pks(stored))
    sizes = []
    real_claim = worker.claim

    def counted_claim(ids, **options):
        token, claimed = real_claim(ids, **options)
        if claimed:
            sizes.append(len(claimed))
        return token, claimed

    monkeypatch.setattr(worker, "claim", counted_claim)
    assert worker.drain(ids) == 50
    assert sizes == [50]  # the task's own burst, in one claim
    assert Assessment.objects.filter(name="helpful").count() == 50

    sizes.clear()
    # The first drain's answers adapted the endpoint's limit (quick or slow, on a loaded machine): start afresh.
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=None, latency_floor_ms=None, limit_lowered_at=None)
    stored = ingest(experiment, *(make_trace(f"c{n}", minutes=n % 50) for n in range(50)))
    selection.select_traces(experiment.pk, pks(stored))
    assert worker.drain([]) == 50  # a task whose own work was taken elsewhere goes on with what is pending
    assert sizes[:3] == [8, 16, 26]


def test_work_a_drain_still_holds_when_it_fails_goes_back_to_the_queue_uncounted(experiment, endpoint, standin, monkeypatch):
    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"u{n}", minutes=n) for n in range(5)))))

    def broken_finish(*args):
        raise RuntimeError("a bug while recording")

    monkeypatch.setattr(worker, "finish", broken_finish)
    monkeypatch.setattr(worker, "finish_many", broken_finish)
    with pytest.raises(RuntimeError):
        worker.drain(ids)
    assert sorted(Evaluation.objects.values_list("status", "claimed_by", "attempts")) == [("pending", "", 0)] * 5


def test_work_stuck_behind_a_full_endpoint_does_not_keep_another_endpoints_work_from_being_claimed(experiment, endpoint, standin):
    """A look-back waiting for its own endpoint's slots used to fill the room for claims, so a burst for another
    endpoint was claimed one item per look-back answer (seconds to minutes with one worker process)."""
    from judges.endpoint_actions import create_endpoint
    from tests.conftest import STANDIN_KEY

    busy = create_endpoint(name="busy", model="openai/evalapp-standin", api_base=standin.api_base, api_key=STANDIN_KEY, is_standin=True)
    old = helpful(experiment, busy, name="old", active=False)
    stored = ingest(experiment, *(make_trace(f"lb{n}", minutes=n) for n in range(12)))
    update_judge(old, active=True)
    assert len(selection.backfill_judge(old.pk)) == 12  # its look-back: 12 evaluations for the busy endpoint
    drain = worker._Drain(None, take_more=True, budget_seconds=60, max_in_flight=64)
    drain.prepare(worker.claim(None, limit=8, token=drain.token)[1])
    drain.saturated = {busy.pk}  # its slots are all taken: these 8 wait
    assert len(drain.waiting) == 8
    helpful(experiment, endpoint, name="live")
    live_ids = selection.select_traces(experiment.pk, pks(stored[:5]))
    assert drain.claim_more()
    waiting_live = [evaluation.pk for evaluation, _ in drain.waiting if evaluation.judge.endpoint_id == endpoint.pk]
    assert sorted(waiting_live) == sorted(live_ids)  # all five claimed at once, none of the busy endpoint's rest
    assert len(drain.waiting) == 13
    worker.release_all(drain.token)


def test_a_drain_stopping_on_an_error_still_writes_the_results_it_already_paid_for(experiment, endpoint, standin, monkeypatch):
    """Answers wait for their writes until the next calls have started; a database error in between must not throw
    them away (they would be given back and judged, and paid for, again)."""
    from django.db import OperationalError

    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"t{n}", minutes=n) for n in range(3)))))
    real_claim_more = worker._Drain.claim_more

    def locked_once_answers_wait(self):
        if self.answered:
            raise OperationalError("database is locked")
        return real_claim_more(self)

    monkeypatch.setattr(worker._Drain, "claim_more", locked_once_answers_wait)
    with pytest.raises(OperationalError):
        worker.drain(ids)
    written = Assessment.objects.filter(name="helpful").count()
    assert written >= 1 and Evaluation.objects.filter(status="done").count() == written
    # A call still in flight when the error came is not settled: it goes back to the queue with the unstarted rest.
    assert Evaluation.objects.filter(status="pending").count() == 3 - written


def test_a_drain_writes_each_rounds_results_together_not_one_statement_set_and_commit_each(experiment, endpoint, standin):
    """~5 statements and a commit per result kept the one draining thread (and SQLite's write lock) busy while a
    round's slots waited; a round's results now go in one transaction of a few statements."""
    from django.test.utils import CaptureQueriesContext

    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"r{n}", minutes=n) for n in range(24)))))
    with CaptureQueriesContext(connection) as queries:
        assert worker.drain(ids) == 24
    inserts = [query["sql"] for query in queries.captured_queries if query["sql"].startswith('INSERT INTO "traces_assessment"')]
    assert 1 <= len(inserts) <= 6  # one per round of answers (24 calls answer in a few rounds), not 24
    assert Assessment.objects.filter(trace__experiment=experiment, valid=True).count() == 24
    settled = Evaluation.objects.filter(status="done", lease_expires_at=None, finished_at__isnull=False, assessment__valid=True)
    assert settled.count() == 24


def test_a_drain_decrypts_an_endpoints_key_once_a_claim_not_twice_a_judgement(experiment, endpoint, standin, monkeypatch):
    """The judge's definition (the endpoint's key decrypted in it) is built once per judge for each claimed batch and
    handed to the call with the prompt: it was built for every judgement, and again in the call's thread."""
    from judges import secrets

    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"k{n}", minutes=n) for n in range(24)))))
    decrypted = []
    real_decrypt = secrets.decrypt
    monkeypatch.setattr(secrets, "decrypt", lambda value: decrypted.append(1) or real_decrypt(value))
    assert worker.drain(ids) == 24
    assert Assessment.objects.filter(trace__experiment=experiment, valid=True, error_code="").count() == 24
    assert 1 <= len(decrypted) <= 4  # a claim or a few (the burst is claimed in growing rounds), not 48


def test_a_claim_is_one_statement_and_its_fetch_and_takes_only_its_limit(experiment, endpoint):
    """The claim is one UPDATE … RETURNING (compiled by Django, its choice and update took most of the draining thread's
    claims), then the rows and their judges read once each; it takes exactly `limit` rows by priority, and a claim
    that finds nothing costs one statement."""
    from django.test.utils import CaptureQueriesContext

    helpful(experiment, endpoint)
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"c{n}", minutes=n) for n in range(6)))))
    with CaptureQueriesContext(connection) as queries:
        _, claimed = worker.claim(None, limit=4)
    assert len(claimed) == 4 and len(queries.captured_queries) == 3
    assert len({id(evaluation.judge) for evaluation in claimed}) == 1 and claimed[0].judge.endpoint == endpoint
    assert sorted(evaluation.pk for evaluation in claimed) == sorted(ids)[:4]  # oldest first at one priority
    assert Evaluation.objects.filter(status="running").count() == 4
    with CaptureQueriesContext(connection) as queries:
        assert worker.claim(None, limit=4, skip_endpoints=frozenset({endpoint.pk}))[1] == []
    assert len(queries.captured_queries) == 1
    if connection.vendor == "sqlite":  # the rows it updates are found by their keys, not among every pending row
        sql, params = queries.captured_queries[0]["sql"], []
        with connection.cursor() as cursor:
            plans = [row[-1] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
        assert any("judges_evaluation USING INTEGER PRIMARY KEY" in plan for plan in plans), plans


def test_answered_results_wait_for_a_batch_or_a_tenth_of_a_second_while_calls_are_in_flight():
    """Writing a round's results costs about the same for 2 as for 20, and the drain wrote them after every answer:
    now they wait for RECORD_BATCH of them, or RECORD_SECONDS after the oldest, or for nothing else being in flight."""
    drain = worker._Drain(None, take_more=True, budget_seconds=60, max_in_flight=64)
    assert not drain.record_due()
    drain.answered, drain.answered_since = [object()] * 3, time.monotonic()
    drain.in_flight = {object(): None}
    assert not drain.record_due()
    drain.answered_since -= worker.RECORD_SECONDS + 0.01
    assert drain.record_due()
    drain.answered_since = time.monotonic()
    drain.answered = [object()] * worker.RECORD_BATCH
    assert drain.record_due()
    drain.answered, drain.in_flight = [object()] * 3, {}
    assert drain.record_due()  # nothing else is coming: write now


def test_a_claim_that_found_nothing_is_not_repeated_at_once_while_calls_are_in_flight(experiment, endpoint, monkeypatch):
    """With a backlog behind a full endpoint, ~4 in 5 of the drain's claims (one after nearly every answer) found
    nothing; one that did isn't repeated for CLAIM_QUIET_SECONDS while the drain waits for answers anyway."""
    looks = []
    real_claim = worker.claim
    monkeypatch.setattr(worker, "claim", lambda *args, **kwargs: looks.append(1) or real_claim(*args, **kwargs))
    drain = worker._Drain(None, take_more=True, budget_seconds=60, max_in_flight=64)
    drain.in_flight = {object(): None}
    drain.claim_more()
    drain.claim_more()
    assert len(looks) == 1
    drain.quiet_until = time.monotonic()  # the quiet time is over
    helpful(experiment, endpoint)
    selection.select_traces(experiment.pk, pks(ingest(experiment, make_trace("q1"))))
    drain.claim_more()
    assert len(looks) == 2 and [evaluation.trace.trace_id for evaluation, _ in drain.waiting] == ["q1"]


def test_preparing_prompts_leaves_no_reference_cycles(experiment, endpoint):
    """What the drain reads and builds for a batch's prompts is freed as soon as the batch is done with it, not by
    the cyclic collector's full pass, which stops every thread (0.2 s in a worker that hasn't frozen its imports):
    spans were prefetched (each caching its trace) and the span tree was drawn by a function that referred to itself
    (design note 55)."""
    import gc

    from judges.claims import claim

    helpful(experiment, endpoint, name="steps", instructions="Are the steps in {{ trace }} sensible?")
    ids = selection.select_traces(experiment.pk, pks(ingest(experiment, *(make_trace(f"c{n}", minutes=n) for n in range(8)))))
    worker._load(claim(ids[:4], limit=4)[1])  # the first batch imports what preparing needs, once per process
    _, claimed = claim(ids[4:], limit=4)
    assert len(claimed) == 4
    gc.collect()
    gc.disable()
    try:
        prepared = worker._load(claimed)
        assert all("search_docs" in ready.prompt.messages[-1]["content"] for ready in prepared.values())  # the span tree
        del prepared, claimed
        assert gc.collect() == 0
    finally:
        gc.enable()
