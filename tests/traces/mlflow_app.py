"""An app instrumented with MLflow's own tracing client (`mlflow-tracing`), as its users write one. Run as its own
process by tests/traces/test_mlflow_dropin.py, configured only by MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN
(evalapp's address and an API token). Prints what it saw as one JSON object on its last line.

    python tests/traces/mlflow_app.py log      20 conversations' turns in 4 sessions, feedback, a search
    python tests/traces/mlflow_app.py connect  set an experiment, and report the client's error if there is one
"""

from __future__ import annotations

import json
import sys

import mlflow
from mlflow.entities import AssessmentSource, SpanType

SESSIONS = ["conv-a", "conv-b", "conv-c", "conv-d"]
TURNS = 5


@mlflow.trace(span_type=SpanType.CHAT_MODEL)
def call_model(messages: list[dict[str, str]]) -> dict:
    span = mlflow.get_current_active_span()
    span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42})
    return {"choices": [{"message": {"role": "assistant", "content": f"Answer to: {messages[-1]['content']}"}}]}


@mlflow.trace(span_type=SpanType.RETRIEVER)
def search_help_center(query: str) -> list[dict]:
    return [{"page_content": "Orders ship in 2 days.", "metadata": {"doc_uri": "help/shipping"}}]


@mlflow.trace(name="support_agent", span_type=SpanType.AGENT)
def support_agent(question: str, session: str, turn: int) -> str:
    mlflow.update_current_trace(
        metadata={"mlflow.trace.session": session, "mlflow.trace.user": f"user-{session[-1]}", "app_version": "2.1.0"},
        tags={"team": "support", "turn": str(turn)},
    )
    search_help_center(question)
    reply = call_model([{"role": "user", "content": question}])
    if question.endswith("?!"):
        raise RuntimeError("the order service timed out")
    return reply["choices"][0]["message"]["content"]


def log() -> dict:
    mlflow.set_experiment("support-bot")
    trace_ids = []
    for session in SESSIONS:
        for turn in range(TURNS):
            question = f"{session} question {turn}" + ("?!" if (session, turn) == ("conv-d", 4) else "?")
            try:
                support_agent(question, session, turn)
            except RuntimeError:
                pass
            trace_ids.append(mlflow.get_last_active_trace_id())
    mlflow.flush_trace_async_logging()
    first = trace_ids[0]
    mlflow.log_feedback(
        trace_id=first,
        name="helpful",
        value=True,
        rationale="Answered the question.",
        source=AssessmentSource("HUMAN", "alice@example.com"),
    )
    mlflow.log_feedback(trace_id=first, name="answer_length", value=42)  # by code, the client's default source
    retriever = next(span for span in mlflow.get_trace(first).data.spans if span.name == "search_help_center")
    mlflow.log_feedback(trace_id=first, name="relevant", value="yes", span_id=retriever.span_id)
    mlflow.log_expectation(trace_id=first, name="expected_answer", value={"answer": "Orders ship in 2 days."})
    found = mlflow.search_traces(filter_string="metadata.`mlflow.trace.session` = 'conv-b'", return_type="list")
    every = mlflow.search_traces(return_type="list", max_results=50)
    one = mlflow.get_trace(first)
    return {
        "trace_ids": trace_ids,
        "conv_b": sorted(trace.info.trace_id for trace in found),
        "all": len(every),
        "sessions_seen": sorted({trace.info.trace_metadata.get("mlflow.trace.session") for trace in every}),
        "first": {
            "spans": sorted((span.name, span.span_type) for span in one.data.spans),
            "inputs": one.data.spans[0].inputs if one.data.spans[0].parent_id is None else None,
            "token_usage": one.info.token_usage,
            "state": str(one.info.state),
            "tags": one.info.tags.get("team"),
            "assessments": sorted((a.name, a.source.source_type, repr(a.value)) for a in one.info.assessments),
            "relevant_span": next(a.span_id for a in one.info.assessments if a.name == "relevant"),
            "retriever_span": retriever.span_id,
        },
    }


def connect() -> dict:
    try:
        mlflow.set_experiment("support-bot")
    except mlflow.exceptions.MlflowException as error:
        return {"error_code": error.error_code, "http_status": error.get_http_status_code(), "message": error.message}
    return {"error_code": None}


if __name__ == "__main__":
    print(json.dumps({"log": log, "connect": connect}[sys.argv[1]](), default=str))
