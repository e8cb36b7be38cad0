"""Judging one trace or one session: gather what the judge sees, check it applies, build the prompt, call the
model (judges.llm). `evaluate_*` write nothing, so "try it" can use them; judges.actions records the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from judges import context as judge_context
from judges.catalog import BUILTIN_JUDGES
from judges.llm import NOT_APPLICABLE, CallResult, EndpointConfig, complete
from judges.models import Judge, ModelEndpoint
from judges.outputs import OutputSpec
from judges.prompting import Prompt, build_prompt
from judges.templating import GUIDELINES, render
from traces.models import Session, Span, Trace

REQUIREMENT_MESSAGES = {
    "inputs": "this {target} has no request (inputs) to judge",
    "outputs": "this {target} has no response (outputs) to judge{why}",
    "retrieval": "{judge} needs RETRIEVER spans (documents your retriever returned); this {target} has none{kinds}",
    "tools": "{judge} needs TOOL spans (the tool calls your agent made); this {target} has none{kinds}",
    "conversation": "this session has no turns to judge",
    "guidelines": "{judge} needs guidelines to check against; edit the judge and write them",
}


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


@dataclass
class Outcome:
    result: CallResult
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.result.ok


def endpoint_config(endpoint: ModelEndpoint) -> EndpointConfig:
    return EndpointConfig(
        model=endpoint.model,
        api_base=endpoint.api_base,
        api_key=endpoint.get_api_key(),
        inference_params=dict(endpoint.inference_params or {}),
        timeout_seconds=endpoint.timeout_seconds,
        max_retries=endpoint.max_retries,
        output_mode=endpoint.output_mode,
        detected_output_mode=endpoint.detected_output_mode,
        input_cost_per_million=endpoint.input_cost_per_million,
        output_cost_per_million=endpoint.output_cost_per_million,
        context_window=endpoint.context_window,
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


def _span_data(span: Span) -> judge_context.SpanData:
    return judge_context.SpanData(
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


def trace_data(trace: Trace) -> judge_context.TraceData:
    spans = list(trace.spans.all())  # prefetched by callers that load many
    return judge_context.TraceData(
        trace_id=trace.trace_id,
        request=trace.request,
        response=trace.response,
        metadata=dict(trace.metadata or {}),
        tags=dict(trace.tags or {}),
        status=trace.status,
        spans=[_span_data(span) for span in sorted(spans, key=lambda span: (span.started_at, span.pk))],
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
            "guidelines": bool(definition.instructions.strip()),
        }[requirement]
        if not present:
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


def _prepare(definition: JudgeDefinition, values: dict[str, Any], target: str, status: str, spans) -> Prepared:
    reason = _not_applicable(definition, values, target, status, spans)
    if reason:
        return Prepared(None, reason[0].upper() + reason[1:])
    if definition.builtin_key:
        values = {**values, GUIDELINES: definition.instructions.strip()}
    task, blocks = render(definition.template, values)
    prompt = build_prompt(task, blocks, definition.spec, context_window_tokens=definition.endpoint.context_tokens())
    if prompt.missing and not definition.builtin_key:
        names = ", ".join("{{ " + label.lower() + " }}" for label in prompt.missing)
        return Prepared(prompt, f"This {target} has no value for {names}, which the instructions use.")
    return Prepared(prompt)


def prepare_trace(definition: JudgeDefinition, trace: Trace) -> Prepared:
    data = trace_data(trace)
    return _prepare(definition, judge_context.trace_values(data), "trace", trace.status, data.spans)


def prepare_session(definition: JudgeDefinition, session: Session, traces: list[Trace] | None = None) -> Prepared:
    turns = [trace_data(trace) for trace in (traces if traces is not None else session_traces(session))]
    spans = [span for turn in turns for span in turn.spans]
    return _prepare(definition, judge_context.session_values(turns), "session", "OK", spans)


def _call(definition: JudgeDefinition, prepared: Prepared) -> Outcome:
    if prepared.not_applicable or prepared.prompt is None:
        return Outcome(CallResult(error_code=NOT_APPLICABLE, error_message=prepared.not_applicable))
    result = complete(definition.endpoint, prepared.prompt.messages, definition.spec)
    return Outcome(result, truncated=prepared.prompt.truncated)


def evaluate_trace(definition: JudgeDefinition, trace: Trace) -> Outcome:
    return _call(definition, prepare_trace(definition, trace))


def evaluate_session(definition: JudgeDefinition, session: Session, traces: list[Trace] | None = None) -> Outcome:
    return _call(definition, prepare_session(definition, session, traces))
