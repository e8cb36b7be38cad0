"""What a run's record expects reaches the judges: `{{ expectations }}` and dotted paths into it for custom judges;
Correctness checks the record's expected facts (or expected response) and Guidelines its guidelines; without them
each says "not applicable" instead of making a verdict up. And the gates as people write them."""

from __future__ import annotations

import pytest

from evaluations.gates import GateError, GateIn, check_gate, parse_gate
from judges.actions import create_judge
from judges.errors import ConfigError
from judges.preparation import definition_of, prepare_trace
from tests.conftest import ingest, judge_now, make_trace
from traces.models import Trace


def trace_expecting(experiment, trace_id: str, expectations: dict | None) -> Trace:
    [trace] = ingest(experiment, make_trace(trace_id, request={"question": "Can I return it?"}, response="Yes, within 30 days."))
    Trace.objects.filter(pk=trace.pk).update(expectations=expectations)
    trace.refresh_from_db()
    return trace


def user_message(prepared) -> str:
    return "\n".join(message["content"] for message in prepared.prompt.messages if message["role"] == "user")


@pytest.mark.django_db
def test_a_custom_judge_reads_expectations_and_a_dotted_path(experiment, endpoint):
    judge = create_judge(experiment, name="match", instructions="Does {{ outputs }} say {{ expectations.expected_response }}?", endpoint=endpoint)
    expected = prepare_trace(definition_of(judge), trace_expecting(experiment, "t1", {"expected_response": "30 days"}))
    assert not expected.not_applicable and "30 days" in user_message(expected)
    without = prepare_trace(definition_of(judge), trace_expecting(experiment, "t2", None))
    assert without.not_applicable == "This trace has no value for {{ expectations.expected_response }}, which the instructions use."
    whole = create_judge(experiment, name="whole", instructions="Given {{ expectations }}, is {{ outputs }} right?", endpoint=endpoint)
    assert '"expected_response": "30 days"' in user_message(prepare_trace(definition_of(whole), trace_expecting(experiment, "t3", {"expected_response": "30 days"})))


@pytest.mark.django_db
def test_correctness_checks_the_records_expected_facts_and_is_not_applicable_without_them(experiment, endpoint):
    correctness = create_judge(experiment, name="correctness", builtin_key="Correctness", endpoint=endpoint, guidelines_optional=True)
    facts = prepare_trace(definition_of(correctness), trace_expecting(experiment, "t1", {"expected_facts": ["30-day window", "original packaging"]}))
    assert "- 30-day window\n- original packaging" in facts.prompt.messages[0]["content"] + user_message(facts)
    response = prepare_trace(definition_of(correctness), trace_expecting(experiment, "t2", {"expected_response": "Within 30 days."}))
    assert "Within 30 days." in response.prompt.messages[0]["content"] + user_message(response)
    none = prepare_trace(definition_of(correctness), trace_expecting(experiment, "t3", {"guidelines": "be brief"}))
    assert none.prompt is None and "needs the facts to expect" in none.not_applicable
    # Judged through the engine, the missing facts are a "not applicable" result, not a verdict.
    assessment = judge_now(correctness, Trace.objects.get(trace_id="t3"))
    assert assessment.error_code == "not_applicable" and assessment.value is None


@pytest.mark.django_db
def test_guidelines_adds_each_records_guidelines_to_the_judges_own(experiment, endpoint):
    own = create_judge(experiment, name="tone", builtin_key="Guidelines", instructions="Be polite.", endpoint=endpoint)
    prepared = prepare_trace(definition_of(own), trace_expecting(experiment, "t1", {"guidelines": ["Mention the 30 days"]}))
    text = prepared.prompt.messages[0]["content"] + user_message(prepared)
    assert "Be polite." in text and "- Mention the 30 days" in text
    per_row = create_judge(experiment, name="per_row", builtin_key="Guidelines", endpoint=endpoint, guidelines_optional=True)
    assert "needs guidelines" in prepare_trace(definition_of(per_row), trace_expecting(experiment, "t2", {})).not_applicable
    with pytest.raises(ConfigError, match="needs guidelines"):  # the form still asks for them
        create_judge(experiment, name="no_rules", builtin_key="Guidelines", endpoint=endpoint)


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ("correctness>=0.9", GateIn("correctness", None, ">=", 0.9)),
        ("relevance.pass_rate >= 90%", GateIn("relevance", "pass_rate", ">=", 0.9)),
        ("score.mean<=4.5", GateIn("score", "mean", "<=", 4.5)),
        ("tone check >= .5", GateIn("tone check", None, ">=", 0.5)),
        ({"judge": "score", "metric": "mean", "operator": "<=", "threshold": 3}, GateIn("score", "mean", "<=", 3.0)),
    ],
)
def test_gates_are_read_as_written(written, parsed):
    assert parse_gate(written) == parsed


@pytest.mark.parametrize(
    ("written", "output_type", "words"),
    [
        ("correctness=0.9", "boolean", "is not a gate"),
        ("correctness>=1.2", "boolean", "share from 0 to 1"),
        ("correctness.mean>=0.5", "boolean", "gate its pass rate"),
        ("score>=3", "categorical", "gates apply to yes/no judges"),
        ({"judge": "x", "threshold": "high"}, "boolean", "must be a number"),
    ],
)
def test_bad_gates_say_how_to_write_them(written, output_type, words):
    with pytest.raises(GateError, match=words):
        check_gate(parse_gate(written), output_type)
