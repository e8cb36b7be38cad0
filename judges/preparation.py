"""What one judgement sends: the judge's definition (saved or the form's unsaved one), what it sees of a trace or a
session, and the prompt — or why the judge doesn't apply. Reads the database, writes nothing, calls no model."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Prefetch

from judges import prompt_values
from judges.catalog import BUILTIN_JUDGES
from judges.egress import EgressPolicy
from judges.llm import EndpointConfig
from judges.models import Judge, ModelEndpoint
from judges.outputs import OutputSpec
from judges.prompting import Prompt, build_prompt
from judges.templating import GUIDELINES, format_value, render
from traces.models import Session, Span, Trace

REQUIREMENT_MESSAGES = {
    "inputs": "this {target} has no request (inputs) to judge",
    "outputs": "this {target} has no response (outputs) to judge{why}",
    "retrieval": "{judge} needs RETRIEVER spans (documents your retriever returned); this {target} has none{kinds}",
    "tools": "{judge} needs TOOL spans (the tool calls your agent made); this {target} has none{kinds}",
    "conversation": "this session has no turns to judge",
    "guidelines": "{judge} needs guidelines to check against: write them in the judge, or give the record expectations.guidelines",
    "expected_facts": (
        "{judge} needs the facts to expect: give the record expectations.expected_facts or expectations.expected_response, "
        "or list them in the judge's guidelines"
    ),
}
# Built-ins whose {{ guidelines }} a run's record can supply (design note 40): Correctness takes the record's
# expected facts (or expected response) instead of the judge's own list; Guidelines adds the record's guidelines
# to the judge's.
EXPECTED_FACTS_JUDGES = frozenset({"Correctness"})
PER_ROW_GUIDELINES_JUDGES = frozenset({"Guidelines"})


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [item.strip() if isinstance(item, str) else format_value(item) for item in value if item not in (None, "")]
    return [] if value in (None, {}, "") else [format_value(value)]


def builtin_guidelines(builtin_key: str, own: str, expectations: Any) -> str:
    """What a built-in's {{ guidelines }} says for one trace: the judge's own text, or what the record expects."""
    own = own.strip()
    expected = expectations if isinstance(expectations, dict) else {}
    if builtin_key in EXPECTED_FACTS_JUDGES:
        facts = _texts(expected.get("expected_facts"))
        response = _texts(expected.get("expected_response"))
        parts = [f"- {fact}" for fact in facts]
        if response:
            parts.append("- everything this expected response states: " + " ".join(response))
        return "\n".join(parts) if parts else own
    if builtin_key in PER_ROW_GUIDELINES_JUDGES:
        return "\n".join([own] * bool(own) + [f"- {text}" for text in _texts(expected.get("guidelines"))])
    return own


@dataclass
class JudgeDefinition:
    """Everything about a judge that decides what it asks: saved or not (the form's "try it")."""

    name: str
    scope: str
    builtin_key: str
    instructions: str
    spec: OutputSpec
    endpoint: EndpointConfig
    endpoint_name: str = ""
    model: str = ""
    is_standin: bool = False

    @property
    def template(self) -> str:
        if not self.builtin_key:
            return self.instructions
        builtin = BUILTIN_JUDGES[self.builtin_key]
        if self.instructions.strip() and "guidelines" not in builtin.requires:
            return builtin.template + "\n\nAlso take into account these criteria from the team:\n" + self.instructions.strip()
        return builtin.template

    @property
    def requires(self) -> tuple[str, ...]:
        return BUILTIN_JUDGES[self.builtin_key].requires if self.builtin_key else ()

    @property
    def label(self) -> str:
        return BUILTIN_JUDGES[self.builtin_key].label if self.builtin_key else self.name


@lru_cache(maxsize=8)
def _policy(allowed_hosts: tuple[str, ...], allow_private: bool) -> EgressPolicy:
    return EgressPolicy(allowed_hosts, allow_private)


def egress_policy() -> EgressPolicy:
    """Where model calls may go, from the settings as they are now (judges.egress)."""
    return _policy(tuple(settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS), settings.EVALAPP_ENDPOINT_ALLOW_PRIVATE)


def endpoint_config(endpoint: ModelEndpoint) -> EndpointConfig:
    return EndpointConfig(
        model=endpoint.model,
        api_base=endpoint.api_base,
        api_key=endpoint.key_for_call(),
        inference_params=dict(endpoint.inference_params or {}),
        timeout_seconds=endpoint.timeout_seconds,
        max_retries=endpoint.max_retries,
        output_mode=endpoint.output_mode,
        detected_output_mode=endpoint.detected_output_mode,
        input_cost_per_million=endpoint.input_cost_per_million,
        output_cost_per_million=endpoint.output_cost_per_million,
        context_window=endpoint.context_window,
        egress=egress_policy(),
    )


def definition_of(judge: Judge) -> JudgeDefinition:
    return JudgeDefinition(
        name=judge.name,
        scope=judge.scope,
        builtin_key=judge.builtin_key,
        instructions=judge.instructions,
        spec=OutputSpec(judge.output_type, tuple(judge.categories or ()), judge.min_value, judge.max_value),
        endpoint=endpoint_config(judge.endpoint),
        endpoint_name=judge.endpoint.name,
        model=judge.endpoint.model,
        is_standin=judge.endpoint.is_standin,
    )


def _span_data(span: Span) -> prompt_values.SpanData:
    return prompt_values.SpanData(
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        span_type=span.span_type,
        status=span.status,
        status_message=span.status_message,
        duration_ms=span.duration_ms,
        inputs=span.inputs,
        outputs=span.outputs,
        started_at=span.started_at.isoformat(),
    )


def trace_data(trace: Trace, spans: list[Span] | None = None) -> prompt_values.TraceData:
    """What a judge sees of `trace`; its `spans` as the caller read them (else its spans, prefetched or read now)."""
    spans = list(trace.spans.all()) if spans is None else spans
    return prompt_values.TraceData(
        trace_id=trace.trace_id,
        request=trace.request,
        response=trace.response,
        metadata=dict(trace.metadata or {}),
        tags=dict(trace.tags or {}),
        status=trace.status,
        spans=[_span_data(span) for span in sorted(spans, key=lambda span: (span.started_at, span.pk))],
        expectations=trace.expectations if isinstance(trace.expectations, dict) else None,
    )


def session_traces(session: Session) -> list[Trace]:
    return list(
        Trace.objects.filter(experiment_id=session.experiment_id, session_id=session.session_id)
        .order_by("started_at", "pk")
        .prefetch_related(Prefetch("spans", queryset=Span.objects.order_by("started_at", "pk")))
    )


def _not_applicable(definition: JudgeDefinition, values: dict[str, Any], target: str, status: str, spans) -> str | None:
    kinds = sorted({span.span_type for span in spans})
    for requirement in definition.requires:
        present = {
            "inputs": values.get("inputs") is not None,
            "outputs": values.get("outputs") is not None,
            "retrieval": values.get("retrieved_context") is not None,
            "tools": values.get("tool_calls") is not None,
            "conversation": values.get("conversation") is not None,
            "guidelines": bool(values.get(GUIDELINES)),
        }[requirement]
        if not present:
            if requirement == "guidelines" and definition.builtin_key in EXPECTED_FACTS_JUDGES:
                requirement = "expected_facts"
            return REQUIREMENT_MESSAGES[requirement].format(
                target=target,
                judge=definition.label,
                kinds=f" (its span types: {', '.join(kinds)})" if kinds else "",
                why=" (the trace ended with an error)" if status == "ERROR" else "",
            ) + "."
    return None


@dataclass
class Prepared:
    """The prompt for one judgement, or why the judge does not apply."""

    prompt: Prompt | None
    not_applicable: str = ""
    # What it was prepared for: the call reuses it (the endpoint's key decrypted once, not again in the call's thread).
    definition: JudgeDefinition | None = field(default=None, repr=False)


def _prepare(definition: JudgeDefinition, values: dict[str, Any], target: str, status: str, spans) -> Prepared:
    if definition.builtin_key:
        values = {**values, GUIDELINES: builtin_guidelines(definition.builtin_key, definition.instructions, values.get("expectations"))}
    reason = _not_applicable(definition, values, target, status, spans)
    if reason:
        return Prepared(None, reason[0].upper() + reason[1:], definition)
    task, blocks = render(definition.template, values)
    prompt = build_prompt(task, blocks, definition.spec, context_window_tokens=definition.endpoint.context_tokens())
    if prompt.missing and not definition.builtin_key:
        names = ", ".join("{{ " + label.lower() + " }}" for label in prompt.missing)
        return Prepared(prompt, f"This {target} has no value for {names}, which the instructions use.", definition)
    return Prepared(prompt, definition=definition)


def prepare_trace(definition: JudgeDefinition, trace: Trace, spans: list[Span] | None = None) -> Prepared:
    data = trace_data(trace, spans)
    return _prepare(definition, prompt_values.trace_values(data), "trace", trace.status, data.spans)


def prepare_session(definition: JudgeDefinition, session: Session, traces: list[Trace] | None = None) -> Prepared:
    turns = [trace_data(trace) for trace in (traces if traces is not None else session_traces(session))]
    spans = [span for turn in turns for span in turn.spans]
    return _prepare(definition, prompt_values.session_values(turns), "session", "OK", spans)
