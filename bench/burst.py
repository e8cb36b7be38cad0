"""A burst through the real OpenTelemetry SDK: `bench/ingest.py --shape burst` uses this.

An instrumented application ends N agent traces (5 spans each, the SDK's own spans with the attributes an
OpenInference/MLflow instrumentation sets) as fast as it can, or at `rate` traces per second, into a
BatchSpanProcessor that feeds an OTLPSpanExporter (OTLP/HTTP protobuf) — the SDK's default settings unless told
otherwise — then shuts the provider down as an application does when it exits. Counts what the SDK dropped
(its queue was full), what the exporter gave up on (after its retries), and how often the server said 429/503."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field

SPANS_PER_TRACE = 5


@dataclass
class BurstResult:
    traces: int
    spans: int
    seconds_producing: float = 0.0
    seconds_total: float = 0.0
    spans_exported: int = 0
    spans_failed: int = 0
    requests: int = 0
    retries: int = 0
    retry_statuses: dict[str, int] = field(default_factory=dict)

    @classmethod
    def combined(cls, parts: list[BurstResult]) -> BurstResult:
        """Several applications' results as one: counts add up, times are the slowest application's."""
        total = cls(traces=sum(part.traces for part in parts), spans=sum(part.spans for part in parts))
        total.seconds_producing = max(part.seconds_producing for part in parts)
        total.seconds_total = max(part.seconds_total for part in parts)
        for part in parts:
            total.spans_exported += part.spans_exported
            total.spans_failed += part.spans_failed
            total.requests += part.requests
            total.retries += part.retries
            for status, count in part.retry_statuses.items():
                total.retry_statuses[status] = total.retry_statuses.get(status, 0) + count
        return total

    @property
    def spans_dropped(self) -> int:
        """Ended but never handed to the exporter: the batch processor's queue was full."""
        return self.spans - self.spans_exported - self.spans_failed


class _RetryCounter(logging.Handler):
    """The exporter logs one warning per retry ("Transient error Service Unavailable encountered ..., retrying in
    1.00s.")."""

    def __init__(self, result: BurstResult):
        super().__init__(logging.WARNING)
        self.result = result

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Transient error"):
            self.result.retries += 1
            status = message.removeprefix("Transient error ").split(" encountered")[0]
            self.result.retry_statuses[status] = self.result.retry_statuses.get(status, 0) + 1


def run_burst(
    endpoint: str,
    headers: dict[str, str],
    *,
    traces: int,
    rate: float = 0.0,
    processor_options: dict[str, int] | None = None,
    seed: int = 7,
) -> BurstResult:
    """Ends `traces` traces (at `rate` traces/s, or as fast as possible when 0) and shuts the provider down; the
    processor's options are BatchSpanProcessor's keyword arguments (max_queue_size, max_export_batch_size,
    schedule_delay_millis), the SDK's defaults when None."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    result = BurstResult(traces=traces, spans=traces * SPANS_PER_TRACE)

    class CountingExporter(OTLPSpanExporter):
        def export(self, spans):  # type: ignore[override]
            outcome = super().export(spans)
            result.requests += 1
            if outcome == SpanExportResult.SUCCESS:
                result.spans_exported += len(spans)
            else:
                result.spans_failed += len(spans)
            return outcome

    counter = _RetryCounter(result)
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    exporter_logger.addHandler(counter)
    exporter_logger.propagate = False  # counted, not printed: one line per retry would bury the figures
    # "Queue full, dropping span." once per span would flood the terminal; the drops are counted instead.
    logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent", "deployment.environment": "production"}))
    provider.add_span_processor(BatchSpanProcessor(CountingExporter(endpoint=endpoint, headers=headers), **(processor_options or {})))
    tracer = provider.get_tracer("bench.burst")
    rng = random.Random(seed)
    words = "order refund shipping delivery account invoice return label warehouse customer package tracking".split()

    def sentence(count: int) -> str:
        return " ".join(rng.choice(words) for _ in range(count))

    began = time.perf_counter()
    try:
        for n in range(traces):
            if rate:
                lag = began + n / rate - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)
            question, answer = sentence(40), sentence(60)
            with tracer.start_as_current_span(
                "support_agent",
                attributes={
                    "openinference.span.kind": "AGENT",
                    "input.value": json.dumps({"messages": [{"role": "user", "content": question}]}),
                    "input.mime_type": "application/json",
                    "session.id": f"burst-{n // 4}",
                },
            ) as root:
                with tracer.start_as_current_span(
                    "retrieve",
                    attributes={
                        "mlflow.spanType": json.dumps("RETRIEVER"),
                        "mlflow.spanInputs": json.dumps({"query": question[:80]}),
                        "mlflow.spanOutputs": json.dumps([{"page_content": sentence(80)}]),
                    },
                ):
                    pass
                with tracer.start_as_current_span(
                    "chat gpt-4.1-mini",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4.1-mini",
                        "gen_ai.usage.input_tokens": 321,
                        "gen_ai.usage.output_tokens": 54,
                        "gen_ai.input.messages": json.dumps([{"role": "user", "content": question}]),
                    },
                ):
                    with tracer.start_as_current_span("lookup_order", attributes={"openinference.span.kind": "TOOL", "input.value": str(n)}):
                        pass
                with tracer.start_as_current_span("rerank", attributes={"mlflow.spanType": json.dumps("RERANKER")}):
                    pass
                root.set_attribute("output.value", answer)
        result.seconds_producing = time.perf_counter() - began
        # What an application does as it exits: flush what is queued (retrying as told), then shut down.
        provider.force_flush()
        provider.shutdown()
    finally:
        exporter_logger.removeHandler(counter)
        exporter_logger.propagate = True
    result.seconds_total = time.perf_counter() - began
    return result
