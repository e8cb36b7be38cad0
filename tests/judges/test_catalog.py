"""Every built-in judge renders a complete prompt from a realistic trace or session."""

from __future__ import annotations

import pytest

from judges.catalog import BUILTIN_JUDGES, builtins_for
from judges.llm import EndpointConfig
from judges.outputs import OutputSpec
from judges.preparation import JudgeDefinition, prepare_session, prepare_trace
from tests.conftest import make_trace
from traces.actions import ingest_traces
from traces.models import Session, Trace
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db

GUIDELINES = "Answer in English. Never promise a delivery date."


def rich_trace(trace_id: str, question: str, answer: str, minutes: int = 0, **fields) -> dict:
    trace = make_trace(trace_id, minutes=minutes, session_id="conv-1", **fields)
    trace["spans"][0]["inputs"] = {"messages": [{"role": "user", "content": question}]}
    trace["spans"][0]["outputs"] = {"content": answer}
    trace["spans"].append(
        {
            "span_id": f"{trace_id}-tool",
            "parent_span_id": f"{trace_id}-root",
            "name": "lookup_order",
            "span_type": "TOOL",
            "start_time": trace["spans"][2]["start_time"],
            "end_time": trace["spans"][2]["end_time"],
            "inputs": {"order_id": "A-1001"},
            "outputs": {"status": "in transit", "carrier": "UPS"},
        }
    )
    return trace


@pytest.fixture
def conversation(experiment):
    batch = [
        rich_trace("turn-1", "Where is order A-1001?", "It is in transit with UPS.", 0),
        rich_trace("turn-2", "When will it arrive?", "UPS expects Thursday.", 2),
        rich_trace("turn-3", "Thanks, that's all.", "You're welcome!", 4),
    ]
    ingest_traces(experiment, parse_trace_batch(batch, max_traces=10))
    return Session.objects.get(session_id="conv-1")


def definition(key: str) -> JudgeDefinition:
    builtin = BUILTIN_JUDGES[key]
    return JudgeDefinition(
        name=builtin.default_name,
        scope=builtin.scope,
        builtin_key=key,
        instructions=GUIDELINES if "guidelines" in builtin.requires else "",
        spec=OutputSpec(builtin.output_type, builtin.categories),
        endpoint=EndpointConfig(model="openai/evalapp-standin", context_window=128_000),
    )


def test_the_catalog_covers_what_users_expect():
    assert {judge.key for judge in builtins_for("trace")} >= {
        "RelevanceToQuery", "Safety", "Guidelines", "RetrievalGroundedness", "RetrievalRelevance",
        "ToolCallCorrectness", "ToolCallEfficiency", "Completeness", "Fluency", "Summarization", "PIILeakage",
    }
    assert {judge.key for judge in builtins_for("session")} >= {
        "ConversationCompleteness", "ConversationalGuidelines", "ConversationalRoleAdherence", "ConversationalSafety",
        "ConversationalToolCallEfficiency", "KnowledgeRetention", "UserFrustration",
    }
    for judge in BUILTIN_JUDGES.values():
        assert 20 < len(judge.description) <= 160, judge.key  # fits on a card in the judge picker
    assert BUILTIN_JUDGES["RelevanceToQuery"].default_name == "relevance_to_query"
    assert BUILTIN_JUDGES["PIILeakage"].default_name == "pii_leakage"
    assert BUILTIN_JUDGES["UserFrustration"].categories == ("none", "resolved", "unresolved")


@pytest.mark.parametrize("key", [judge.key for judge in builtins_for("trace")])
def test_trace_judge_renders_a_prompt_from_a_realistic_trace(key, conversation):
    prepared = prepare_trace(definition(key), Trace.objects.get(trace_id="turn-1"))
    assert prepared.not_applicable == ""
    system, user = (message["content"] for message in prepared.prompt.messages)
    assert "Answer type:" in system and "## Task" in system
    assert "(not present)" not in user
    builtin = BUILTIN_JUDGES[key]
    if "retrieval" in builtin.requires:
        assert "[1] Returns are accepted within 30 days." in user
    if "tools" in builtin.requires:
        assert '1. lookup_order({"order_id": "A-1001"}) → {"status": "in transit", "carrier": "UPS"}' in user
    if "guidelines" in builtin.requires:
        assert GUIDELINES in user
    if "inputs" in builtin.requires:
        assert "Where is order A-1001?" in user
    assert "It is in transit with UPS." in user or "outputs" not in builtin.requires


@pytest.mark.parametrize("key", [judge.key for judge in builtins_for("session")])
def test_session_judge_renders_a_prompt_from_a_realistic_conversation(key, conversation):
    prepared = prepare_session(definition(key), conversation)
    assert prepared.not_applicable == ""
    user = prepared.prompt.messages[1]["content"]
    assert "Turn 1\nUser: Where is order A-1001?\nAssistant: It is in transit with UPS." in user
    assert "Turn 3\nUser: Thanks, that's all.\nAssistant: You're welcome!" in user
    if key == "ConversationalToolCallEfficiency":
        assert user.count("lookup_order(") == 3
