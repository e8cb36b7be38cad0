"""The application the evaluation tests evaluate (no Django: `python -m evalapp_client evaluate --predict
tests.client.evaluate_agent:agent` imports it). It looks something up — a span of its own, made through the
OpenTelemetry API — then answers; "I don't know." for questions about unknown things; it raises on "crash"."""

from __future__ import annotations

import asyncio

from opentelemetry import trace


def agent(question: str) -> str:
    with trace.get_tracer("test-agent").start_as_current_span("lookup", attributes={"mlflow.spanType": "RETRIEVER"}):
        if question == "crash":
            raise RuntimeError("the agent crashed")
    if "unknown" in question:
        return "I don't know."
    return f"Here is what our policy says about this: {question.lower().rstrip('?')}."


async def async_agent(question: str) -> str:
    await asyncio.sleep(0.01)
    return agent(question)
