"""The one place that calls a judge model: litellm with structured output and fallbacks, bounded retries of
transient failures, token/cost/latency accounting, and failures classified into codes a user can act on.

No Django here: callers pass an `EndpointConfig` (judges.preparation builds it from a ModelEndpoint).
"""

from __future__ import annotations

import gc
import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from judges import egress
from judges.egress import EgressPolicy, EgressRefused
from judges.outputs import InvalidAnswer, OutputSpec, extract_answer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

logger = logging.getLogger(__name__)

# Failure classes (Assessment.error_code).
AUTHENTICATION = "authentication"
RATE_LIMITED = "rate_limited"
TIMEOUT = "timeout"
PROVIDER_ERROR = "provider_error"
CONTEXT_TOO_LONG = "context_too_long"
INVALID_ANSWER = "invalid_answer"
NOT_APPLICABLE = "not_applicable"
BUDGET_EXCEEDED = "budget_exceeded"
CONFIGURATION = "configuration"

ERROR_TITLES = {
    AUTHENTICATION: "Authentication failed",
    RATE_LIMITED: "Rate limited",
    TIMEOUT: "Timed out",
    PROVIDER_ERROR: "Provider error",
    CONTEXT_TOO_LONG: "Too long for the model",
    INVALID_ANSWER: "Invalid answer",
    NOT_APPLICABLE: "Not applicable",
    BUDGET_EXCEEDED: "Daily spend cap reached",
    CONFIGURATION: "Configuration problem",
}
TRANSIENT = {RATE_LIMITED, TIMEOUT, PROVIDER_ERROR}
OUTPUT_MODES = ("json_schema", "json_object", "text")
MAX_BACKOFF_SECONDS = 30.0
DEFAULT_CONTEXT_WINDOW = 128_000

_litellm = None
# Idle connections kept for reuse by model calls, over all endpoints: more than a worker's calls in flight
# (EVALAPP_DRAIN_CONCURRENCY, 32 by default) plus "Try it" and checks beside them.
KEEP_ALIVE = 256


def get_litellm():
    """Imported on first use: it takes seconds, and most processes (web, ingest) never call a model."""
    global _litellm
    if _litellm is None:
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.turn_off_message_logging = True
        litellm.drop_params = False
        _skip_idle_service_logging(litellm)
        _skip_idle_success_logging(litellm)
        _keep_connections(litellm)
        _litellm = litellm
    return _litellm


def _keep_connections(litellm) -> None:
    """OpenAI-compatible calls (litellm's sync OpenAI path) share one HTTP client that keeps up to KEEP_ALIVE idle
    connections. litellm's own is httpx's default, which keeps 20: with 32 calls in flight, connections were closed
    after answers and opened again for the next calls — 296 connects (each a name lookup through the egress rule,
    and with a real provider a TLS handshake) for 320 calls from 32 threads, now 33; ~1 ms of Python a call
    (design note 55). Every new connection still passes the egress rule (judges.egress), which is deployment-wide,
    so sharing the pool between endpoints lets no call reach what its own rule would refuse. Built as litellm builds
    its own (its TLS settings, redirects followed, HTTP/2 if enabled), except that it keeps no cookies: shared by every
    endpoint for the process's life, a cookie a gateway set in answer to one endpoint's key would go out with
    another's requests."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    import httpx
    from litellm.llms.custom_httpx.http_handler import get_ssl_configuration, http2_enabled

    if litellm.client_session is None:
        litellm.client_session = httpx.Client(
            verify=get_ssl_configuration(),
            follow_redirects=True,
            http2=http2_enabled(),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=KEEP_ALIVE),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # no domain's cookies kept or sent
        )


def _skip_idle_service_logging(litellm) -> None:
    """litellm times every synchronous call for its "service" loggers (Prometheus, Datadog, OpenTelemetry) and
    hands the timing to them on a new event loop made for it (`asyncio.run`) — also when none is configured, as
    here: 0.5–1.2 ms of a call's ~7 ms of Python in the draining worker (py-spy, design note 52). Skipped while
    `litellm.service_callback` is empty; with a logger configured, litellm's own hook runs as before."""
    try:
        from litellm._service_logger import ServiceLogging
    except ImportError:  # moved in another release: nothing skipped, nothing broken
        return
    _skip_while_unheard(ServiceLogging, "service_success_hook", lambda self: bool(litellm.service_callback))


def _skip_idle_success_logging(litellm) -> None:
    """After every call litellm hands the answer to its success loggers on a background thread, which first builds
    a "standard logging payload" (the response cost again, redaction, model info) — also when no logger is
    configured: ~7% of the draining worker's time with the GIL held (py-spy, design note 53). Skipped while no
    success callback is configured, globally or for the call; with one, litellm's own handler runs as before.

    The same goes for the price litellm puts on every answer (`response_cost` in its hidden params, for those
    loggers): we price the answer ourselves (`_cost`), and for a model litellm has no price for (a local model, the
    stand-in) its look-up walks every fallback on each call — 20% of a bare `litellm.completion`'s Python, 2 ms a
    call on a slow machine (py-spy, design note 54). With a logger configured it is worked out as before."""
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except ImportError:  # moved in another release: nothing skipped, nothing broken
        return

    def heard(self) -> bool:
        configured = (litellm.success_callback, litellm._async_success_callback, litellm.callbacks, getattr(self, "dynamic_success_callbacks", None))
        return any(configured)

    _skip_while_unheard(Logging, "success_handler", heard)
    _skip_while_unheard(Logging, "response_cost_calculator", heard)


def _skip_while_unheard(owner: type, name: str, heard: Callable[[Any], bool]) -> None:
    """Replace the method `owner.name` with one that does nothing while `heard(self)` says no logger listens (once)."""
    method = getattr(owner, name)
    if getattr(method, "skips_idle", False):
        return

    def unless_unheard(self, *args, **kwargs):
        return method(self, *args, **kwargs) if heard(self) else None

    unless_unheard.skips_idle = True
    setattr(owner, name, unless_unheard)


def warm_up(**kwargs) -> None:
    """Import what a worker's first model call would (litellm, the OpenAI client's chat resources, litellm's own
    lazy modules through a mock answer that sends nothing): ~1 s of a first call and seconds of imports, paid as a
    worker process starts rather than by the first judgements of a burst. A django-q2 `post_spawn` receiver.

    Then the process's heap as it stands (Django, litellm, the OpenAI client: ~420,000 objects) is frozen out of the
    cyclic garbage collector (`gc.freeze`, CPython's own advice for long-lived processes): its full passes, which
    stop every thread, scanned all of it — two a minute's judging, 0.2 s each, while 32 calls' answers waited; now
    they scan only what judging makes (13 ms; design note 55)."""
    try:
        litellm = get_litellm()
        import openai.resources.chat.completions  # noqa: F401 — the client imports it on its first call

        litellm.completion(model="openai/warm-up", messages=[{"role": "user", "content": "warm-up"}], mock_response="warm-up")
    except Exception:  # a failed warm-up costs the first call its time, nothing more
        logger.warning("warming up the model client failed; the first judgement imports it instead", exc_info=True)
    gc.collect()
    gc.freeze()


@dataclass
class EndpointConfig:
    model: str
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    inference_params: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float = 60
    max_retries: int = 4
    output_mode: str = "auto"  # auto | json_schema | json_object | text
    detected_output_mode: str = ""
    input_cost_per_million: Decimal | None = None
    output_cost_per_million: Decimal | None = None
    context_window: int | None = None
    # Where the call may connect (judges.egress); the default allows public addresses only.
    egress: EgressPolicy = field(default_factory=EgressPolicy)

    def context_tokens(self) -> int:
        return self.context_window or _known_context_tokens(self.model)


@lru_cache(maxsize=256)
def _known_context_tokens(model: str) -> int:
    """The model's context window by litellm's map (looked up once per model and process: for a model the map
    doesn't know, the look-up walks every fallback — ~0.9 ms of each judgement's prompt, design note 54)."""
    try:
        info = get_litellm().get_model_info(model)
        return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_WINDOW)
    except Exception:  # unknown to litellm's map: any model string is allowed
        return DEFAULT_CONTEXT_WINDOW


@dataclass
class CallResult:
    value: Any = None
    rationale: str = ""
    raw_content: str = ""
    error_code: str = ""
    error_message: str = ""
    # The provider's exception class and HTTP status, for a summary that repeats nothing the far end sent.
    error_class: str = ""
    http_status: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: int = 0
    attempts: int = 0
    output_mode: str = ""
    retry_after_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error_code


class _Failure(Exception):
    def __init__(self, code: str, message: str, *, retry_after: float | None = None, unsupported_format: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.unsupported_format = unsupported_format
        self.error_class = ""
        self.http_status: int | None = None


def _redact(text: str, secret: str) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    # Providers sometimes echo a partial key ("Incorrect API key provided: sk-abc***xyz").
    return re.sub(r"\b(sk|ea|key)[-_][A-Za-z0-9_\-*]{6,}", r"\1-***", text)


def _retry_after(error: Exception) -> float | None:
    headers = None
    response = getattr(error, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    headers = headers or getattr(error, "litellm_response_headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured output|response format", re.I)


def classify(error: Exception, api_key: str = "") -> _Failure:
    failure = _classify(error, api_key)
    failure.error_class = type(error).__name__
    status = getattr(error, "status_code", None)
    failure.http_status = status if isinstance(status, int) else None
    return failure


def _classify(error: Exception, api_key: str) -> _Failure:
    litellm = get_litellm()
    message = getattr(error, "message", None) or str(error)
    # "litellm.RateLimitError: RateLimitError: OpenAIException - <the provider's words>" → the provider's words
    message = re.sub(r"^(?:(?:litellm\.)?\w+(?:Error|Exception)\s*[:\-]\s*)+", "", str(message))
    message = _redact(message, api_key).strip()
    if isinstance(error, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return _Failure(AUTHENTICATION, message)
    if isinstance(error, litellm.RateLimitError):
        return _Failure(RATE_LIMITED, message, retry_after=_retry_after(error))
    if isinstance(error, litellm.Timeout):
        return _Failure(TIMEOUT, message)
    if isinstance(error, litellm.ContextWindowExceededError):
        return _Failure(CONTEXT_TOO_LONG, message)
    if isinstance(error, litellm.UnsupportedParamsError):
        return _Failure(PROVIDER_ERROR, message, unsupported_format=bool(_FORMAT_WORDS.search(message)))
    if isinstance(error, litellm.BadRequestError):
        # Not transient: the same request would fail again.
        failure = _Failure(CONFIGURATION, message, unsupported_format=bool(_FORMAT_WORDS.search(message)))
        return failure
    if isinstance(error, litellm.NotFoundError):
        return _Failure(CONFIGURATION, f"model not found: {message}")
    if isinstance(error, (litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.BadGatewayError, litellm.APIConnectionError)):
        return _Failure(PROVIDER_ERROR, message, retry_after=_retry_after(error))
    if isinstance(error, litellm.APIError):
        return _Failure(PROVIDER_ERROR, message, retry_after=_retry_after(error))
    return _Failure(PROVIDER_ERROR, f"{type(error).__name__}: {message}")


def _response_format(mode: str, spec: OutputSpec) -> dict | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "judge_verdict", "schema": spec.json_schema(), "strict": True}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _cost(config: EndpointConfig, response: Any, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
    if config.input_cost_per_million is not None or config.output_cost_per_million is not None:
        cost = Decimal(0)
        if input_tokens and config.input_cost_per_million is not None:
            cost += Decimal(input_tokens) * Decimal(config.input_cost_per_million) / Decimal(1_000_000)
        if output_tokens and config.output_cost_per_million is not None:
            cost += Decimal(output_tokens) * Decimal(config.output_cost_per_million) / Decimal(1_000_000)
        return cost.quantize(Decimal("0.00000001"))
    usage = getattr(response, "usage", None)
    if usage is None or _unpriced_key(config, response) in _UNPRICED:  # no price for either name: known since the first call
        return None
    try:
        # The price list's rate for the tokens the provider counted (cached prompt tokens included): what
        # completion_cost() works out too, in a tenth of its time (0.05–0.13 ms against 0.7–0.9 ms a call, in the
        # draining worker's one GIL; design note 52).
        prompt, completion = get_litellm().cost_per_token(model=config.model, usage_object=usage)
        value = prompt + completion
    except Exception:
        value = _cost_by_answering_model(config, response)
    return Decimal(str(value)).quantize(Decimal("0.00000001")) if value else None


_UNPRICED: set[tuple[str, str]] = set()  # (configured model, answering model) litellm has no price for


def _unpriced_key(config: EndpointConfig, response: Any) -> tuple[str, str]:
    return config.model, str(getattr(response, "model", "") or "")


def _cost_by_answering_model(config: EndpointConfig, response: Any) -> float | None:
    """A configured name the price list doesn't know (an Azure deployment, an alias): completion_cost() prices the
    model that answered instead. One that has no price either is remembered, so an unpriced model (a local one, the
    stand-in) costs both slow look-ups once per process, not once per call (cost_per_token's failure alone was ~9%
    of a call's Python, design note 54)."""
    key = _unpriced_key(config, response)
    try:
        return get_litellm().completion_cost(completion_response=response, model=config.model)
    except Exception:  # no price for either: cost unknown, not zero
        _UNPRICED.add(key)
        return None


def estimate_cost(config: EndpointConfig, messages: list[dict[str, str]], *, output_tokens: int = 150) -> Decimal | None:
    """What a call will likely cost, before it is made: the prompt at ~3 characters a token (on the high side) and a
    judge's short answer; None when the model's prices are unknown."""
    input_tokens = sum(len(message.get("content") or "") for message in messages) // 3 + 10
    if config.input_cost_per_million is not None or config.output_cost_per_million is not None:
        cost = Decimal(input_tokens) * Decimal(config.input_cost_per_million or 0) / Decimal(1_000_000)
        cost += Decimal(output_tokens) * Decimal(config.output_cost_per_million or 0) / Decimal(1_000_000)
        return cost.quantize(Decimal("0.00000001"))
    try:
        prompt, completion = get_litellm().cost_per_token(model=config.model, prompt_tokens=input_tokens, completion_tokens=output_tokens)
    except Exception:  # a model litellm has no price for
        return None
    return Decimal(str(prompt + completion)).quantize(Decimal("0.00000001"))


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(MAX_BACKOFF_SECONDS, retry_after + random.uniform(0, 0.25))
    return min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


def _modes(config: EndpointConfig) -> list[str]:
    if config.output_mode in OUTPUT_MODES:
        return [config.output_mode]
    start = config.detected_output_mode if config.detected_output_mode in OUTPUT_MODES else "json_schema"
    return list(OUTPUT_MODES[OUTPUT_MODES.index(start) :])


def backoff_sleep(seconds: float) -> None:
    """The wait between retries (a module-level hook, so tests can skip the waiting on every path)."""
    time.sleep(seconds)


def _egress_refusal(config: EndpointConfig) -> EgressRefused | None:
    """The endpoint's address checked before anything is sent (the rule applies again to every connection)."""
    try:
        config.egress.check_url(config.api_base)
    except EgressRefused as refusal:
        return refusal
    return None


def _call(config: EndpointConfig, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
    """One request to the provider; every connection it opens obeys the endpoint's egress rule."""
    with egress.guarded(config.egress):
        try:
            return get_litellm().completion(
                model=config.model,
                messages=messages,
                api_base=config.api_base or None,
                api_key=config.api_key or None,
                timeout=config.timeout_seconds,
                max_retries=0,
                num_retries=0,
                **params,
            )
        except Exception as error:
            refusal = egress.refused()
            if refusal is not None:  # a redirect or a changed DNS answer led somewhere refused
                raise _Failure(CONFIGURATION, str(refusal)) from error
            raise


def _params(config: EndpointConfig, mode: str, spec: OutputSpec | None, max_tokens: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": 0, **config.inference_params}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    response_format = _response_format(mode, spec) if spec is not None else None
    if response_format is not None:
        params["response_format"] = response_format
    return params


def complete(
    config: EndpointConfig,
    messages: list[dict[str, str]],
    spec: OutputSpec | None,
    *,
    max_tokens: int | None = None,
) -> CallResult:
    """Call the model, retrying transient failures (honouring Retry-After) up to `config.max_retries` times and
    falling back from JSON schema to JSON mode to plain text when the model refuses a response format. An address
    the egress rule refuses ends as a configuration error, and nothing is sent."""
    result = CallResult()
    refusal = _egress_refusal(config)
    if refusal is not None:
        result.error_code, result.error_message = CONFIGURATION, str(refusal)
        logger.warning("model call to %s refused: %s", config.model, refusal)
        return result
    modes = _modes(config) if spec is not None else ["text"]
    mode_index = 0
    started = time.monotonic()
    transient_failures = 0
    while True:
        mode = modes[mode_index]
        result.attempts += 1
        try:
            response = _call(config, messages, _params(config, mode, spec, max_tokens))
        except Exception as error:  # noqa: BLE001 — every provider failure is classified below
            failure = error if isinstance(error, _Failure) else classify(error, config.api_key)
            if failure.code == TIMEOUT:  # litellm's words ("litellm.Timeout: APITimeoutError - Request timed out. Error_str: …") say less
                failure.message = f"no answer from {config.model} within the endpoint's timeout ({config.timeout_seconds:g} s)"
            if failure.unsupported_format and mode_index + 1 < len(modes):
                logger.info("model %s refused response format %s; falling back to %s", config.model, mode, modes[mode_index + 1])
                mode_index += 1
                continue
            if failure.code in TRANSIENT and transient_failures < config.max_retries:
                delay = _backoff(transient_failures, failure.retry_after)
                transient_failures += 1
                logger.debug("%s from %s (attempt %d); retrying in %.1fs", failure.code, config.model, result.attempts, delay)
                backoff_sleep(delay)
                continue
            result.error_code, result.error_message = failure.code, failure.message
            result.error_class, result.http_status = failure.error_class, failure.http_status
            result.retry_after_seconds = failure.retry_after
            if failure.code in TRANSIENT and transient_failures:
                result.error_message += f" (after {transient_failures + 1} attempts)"
            if failure.code == CONFIGURATION and not failure.error_class:
                logger.warning("model call to %s refused: %s", config.model, failure.message)
            break
        result.output_mode = mode
        usage = getattr(response, "usage", None)
        result.input_tokens = getattr(usage, "prompt_tokens", None)
        result.output_tokens = getattr(usage, "completion_tokens", None)
        result.cost_usd = _cost(config, response, result.input_tokens, result.output_tokens)
        content = response.choices[0].message.content or ""
        result.raw_content = content
        if spec is not None:
            try:
                raw_value, rationale = extract_answer(content)
                result.value = spec.parse_value(raw_value)
                result.rationale = rationale.strip()
            except InvalidAnswer as error:
                result.error_code, result.error_message = INVALID_ANSWER, str(error)
        break
    result.latency_ms = int((time.monotonic() - started) * 1000)
    return result
