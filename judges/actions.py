"""State changes for judges and model endpoints. Views, the API, tasks and commands all go through here."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from judges.catalog import BUILTIN_JUDGES
from judges.llm import AUTHENTICATION, ERROR_TITLES, complete
from judges.models import Evaluation, EvaluationStatus, Judge, JudgeVersion, ModelEndpoint, OutputMode, OutputType, Scope
from judges.runner import Outcome, definition_of, endpoint_config, evaluate_session, evaluate_trace
from judges.templating import TemplateError, validate_instructions
from traces import filters
from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace
from traces.payload import whole_number

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}$")
MAX_CATEGORIES = 20


class ConfigError(ValueError):
    """Invalid judge or endpoint settings: `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


# --- model endpoints ------------------------------------------------------------------------------------

ENDPOINT_FIELDS = (
    "name",
    "model",
    "api_base",
    "inference_params",
    "max_concurrency",
    "requests_per_minute",
    "timeout_seconds",
    "max_retries",
    "input_cost_per_million",
    "output_cost_per_million",
    "context_window",
    "output_mode",
    "is_standin",
)


def _positive_int(errors: dict[str, str], field: str, value: Any, *, minimum: int = 1, maximum: int, required: bool) -> int | None:
    if value in (None, ""):
        if required:
            errors[field] = "is required"
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        errors[field] = "must be a whole number"
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        errors[field] = "must be a whole number"
        return None
    if not minimum <= number <= maximum:
        errors[field] = f"must be between {minimum} and {maximum:,}"
        return None
    return number


def _decimal(errors: dict[str, str], field: str, value: Any, *, column: models.DecimalField) -> Decimal | None:
    """An amount ≥ 0 that fits `column` once rounded to its decimal places (the database rounds it on save)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[field] = "must be a number"
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors[field] = "must be a number"
        return None
    if not number.is_finite() or number < 0:
        errors[field] = "must be a number ≥ 0"
        return None
    limit = Decimal(1).scaleb(column.max_digits - column.decimal_places)
    # Compared once rounded too (999999.9999999 rounds up to the limit); huge numbers first, which can't be rounded.
    if number >= limit or number.quantize(Decimal(1).scaleb(-column.decimal_places)) >= limit:
        errors[field] = f"must be less than {limit:,f}"
        return None
    return number


def _clean_endpoint(data: dict[str, Any], *, instance: ModelEndpoint | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "name" in data or instance is None:
        name = str(data.get("name") or "").strip()
        if not name:
            errors["name"] = "is required"
        elif len(name) > 100:
            errors["name"] = "is longer than 100 characters"
        elif ModelEndpoint.objects.filter(name=name).exclude(pk=instance.pk if instance else None).exists():
            errors["name"] = f"an endpoint named {name!r} already exists"
        clean["name"] = name
    if "model" in data or instance is None:
        model = str(data.get("model") or "").strip()
        if not model:
            errors["model"] = "is required: a litellm model string such as openai/gpt-4.1-mini"
        elif " " in model or len(model) > 200:
            errors["model"] = "must be a litellm model string without spaces, such as openai/gpt-4.1-mini"
        clean["model"] = model
    if "api_base" in data:
        api_base = str(data.get("api_base") or "").strip()
        if api_base:
            parts = urlsplit(api_base)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["api_base"] = "must be an http:// or https:// URL, e.g. http://127.0.0.1:8910/v1"
        clean["api_base"] = api_base
    if "inference_params" in data:
        params = data.get("inference_params") or {}
        if not isinstance(params, dict):
            errors["inference_params"] = 'must be a JSON object, e.g. {"temperature": 0, "max_tokens": 400}'
        else:
            for reserved in ("messages", "model", "api_key", "api_base", "response_format", "stream"):
                if reserved in params:
                    errors["inference_params"] = f"{reserved!r} is set by evalapp and can't be overridden"
            clean["inference_params"] = params
    limits = {"max_concurrency": (1, 256, True), "timeout_seconds": (1, 600, True), "max_retries": (0, 10, True)}
    for field, (minimum, maximum, required) in limits.items():
        if field in data:
            clean[field] = _positive_int(errors, field, data[field], minimum=minimum, maximum=maximum, required=required)
    if "requests_per_minute" in data:
        clean["requests_per_minute"] = _positive_int(errors, "requests_per_minute", data["requests_per_minute"], maximum=1_000_000, required=False)
    if "context_window" in data:
        clean["context_window"] = _positive_int(errors, "context_window", data["context_window"], minimum=1000, maximum=10_000_000, required=False)
    for field in ("input_cost_per_million", "output_cost_per_million"):
        if field in data:
            clean[field] = _decimal(errors, field, data[field], column=ModelEndpoint._meta.get_field(field))
    if "output_mode" in data:
        mode = data.get("output_mode") or OutputMode.AUTO
        if mode not in OutputMode.values:
            errors["output_mode"] = f"must be one of {', '.join(OutputMode.values)}"
        clean["output_mode"] = mode
    if "is_standin" in data:
        if not isinstance(data["is_standin"], bool):
            errors["is_standin"] = "must be true or false"
        clean["is_standin"] = bool(data["is_standin"])
    unknown = set(data) - set(ENDPOINT_FIELDS) - {"api_key", "clear_api_key"}
    for field in sorted(unknown):
        errors[field] = "is not an endpoint setting"
    if errors:
        raise ConfigError(errors)
    return {key: value for key, value in clean.items() if not (key in limits and value is None)}


@transaction.atomic
def create_endpoint(**data: Any) -> ModelEndpoint:
    api_key = data.pop("api_key", "") or ""
    data.pop("clear_api_key", None)
    clean = _clean_endpoint(data, instance=None)
    endpoint = ModelEndpoint(**clean)
    endpoint.set_api_key(str(api_key).strip())
    endpoint.save()
    logger.info("created model endpoint %s (%s)", endpoint.name, endpoint.model)
    return endpoint


@transaction.atomic
def update_endpoint(endpoint: ModelEndpoint, **data: Any) -> ModelEndpoint:
    """Change settings. The API key changes only if a new one is given (or `clear_api_key`); it is write-only."""
    api_key = data.pop("api_key", None)
    clear_api_key = bool(data.pop("clear_api_key", False))
    clean = _clean_endpoint(data, instance=endpoint)
    changed = []
    for field, value in clean.items():
        if getattr(endpoint, field) != value:
            setattr(endpoint, field, value)
            changed.append(field)
    if {"model", "api_base", "output_mode"} & set(changed):
        endpoint.detected_output_mode = ""
        changed.append("detected_output_mode")
    if api_key:
        endpoint.set_api_key(str(api_key).strip())
        changed.append("api_key_encrypted")
    elif clear_api_key:
        endpoint.api_key_encrypted = ""
        changed.append("api_key_encrypted")
    if changed:
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=[*set(changed), "updated_at"])
    if "api_key_encrypted" in changed or "model" in changed or "api_base" in changed:
        # A fixed key or model is the way out of an authentication pause.
        resumed = Judge.objects.filter(endpoint=endpoint, paused_reason__startswith="Authentication").update(paused_reason="", paused_at=None)
        if resumed:
            _after_commit("sweep")
    return endpoint


def check_connection(endpoint: ModelEndpoint) -> tuple[bool, str]:
    """One tiny call. (True, what it said) or (False, the provider's error in plain words)."""
    config = endpoint_config(endpoint)
    config.max_retries = 0
    result = complete(config, [{"role": "user", "content": "Reply with the word OK."}], None, max_tokens=5)
    if result.ok:
        reply = (result.raw_content or "").strip()[:80]
        return True, f"Connected to {endpoint.model} in {result.latency_ms} ms; it replied {reply!r}."
    return False, f"{ERROR_TITLES.get(result.error_code, result.error_code)}: {result.error_message}"


# --- judges ---------------------------------------------------------------------------------------------

JUDGE_FIELDS = (
    "name",
    "scope",
    "builtin_key",
    "instructions",
    "output_type",
    "categories",
    "min_value",
    "max_value",
    "endpoint",
    "sample_rate",
    "filter_string",
    "active",
    "session_idle_seconds",
    "daily_cost_cap_usd",
)


def _number_or_none(errors: dict[str, str], field: str, value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[field] = "must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors[field] = "must be a number"
        return None
    except OverflowError:  # an int beyond a float, e.g. 10**400
        errors[field] = "must be a finite number"
        return None
    if number != number or number in (float("inf"), float("-inf")):
        errors[field] = "must be a finite number"
        return None
    return number


def validate_filter_string(filter_string: str) -> str | None:
    return filters.validate(filter_string)


def clean_judge(experiment: Experiment, data: dict[str, Any], *, instance: Judge | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    merged: dict[str, Any] = {}
    if instance is not None:
        merged = {field: getattr(instance, field) for field in JUDGE_FIELDS}
    merged.update(data)
    unknown = sorted(set(data) - set(JUDGE_FIELDS))
    for field in unknown:
        errors[field] = "is not a judge setting"

    name = str(merged.get("name") or "").strip()
    if instance is not None:
        if "name" in data and name != instance.name:
            errors["name"] = "can't be changed: results are recorded under the judge's name. Create a new judge instead."
        name = instance.name
    elif not name:
        errors["name"] = "is required"
    elif not NAME_PATTERN.match(name):
        errors["name"] = "use up to 100 letters, digits, spaces, '_', '-' or '.', starting with a letter or digit"
    elif Judge.objects.filter(experiment=experiment, name=name).exists():
        errors["name"] = f"this experiment already has a judge named {name!r}"

    scope = merged.get("scope") or Scope.TRACE
    if scope not in Scope.values:
        errors["scope"] = "must be 'trace' or 'session'"
        scope = Scope.TRACE

    builtin_key = merged.get("builtin_key") or ""
    if not isinstance(builtin_key, str):
        errors["builtin_key"] = "must be the key of a built-in judge, such as 'Safety'"
        builtin_key = ""
    builtin = BUILTIN_JUDGES.get(builtin_key) if builtin_key else None
    if builtin_key and builtin is None:
        errors["builtin_key"] = f"unknown built-in judge {builtin_key!r}"
    elif builtin is not None and builtin.scope != scope:
        errors["builtin_key"] = (
            f"{builtin.label} judges {'whole conversations' if builtin.scope == 'session' else 'single traces'}; "
            f"set the scope to {'Sessions' if builtin.scope == 'session' else 'Traces'}"
        )
    if instance is not None and "builtin_key" in data and builtin_key != instance.builtin_key:
        errors["builtin_key"] = "can't be changed; create a new judge for a different built-in"
    if instance is not None and "scope" in data and scope != instance.scope:
        errors["scope"] = "can't be changed; create a new judge for the other scope"

    instructions = str(merged.get("instructions") or "")
    if builtin is None:
        try:
            validate_instructions(instructions, scope)
        except TemplateError as error:
            errors["instructions"] = str(error)
    elif "guidelines" in builtin.requires and not instructions.strip():
        errors["instructions"] = f"{builtin.label} needs guidelines: write the rules the response must follow"

    output_type = merged.get("output_type") or (builtin.output_type if builtin else OutputType.BOOLEAN)
    if "output_type" not in data and instance is None and builtin is not None:
        output_type = builtin.output_type
    if output_type not in OutputType.values:
        errors["output_type"] = f"must be one of {', '.join(OutputType.values)}"
    categories = merged.get("categories") or []
    if builtin is not None and output_type == "categorical" and not categories:
        categories = list(builtin.categories)
    if output_type == "categorical":
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            errors["categories"] = "must be a list of text values"
            categories = []
        categories = [c.strip() for c in categories if c.strip()]
        if len(categories) < 2:
            errors["categories"] = "give at least two allowed values"
        elif len(categories) > MAX_CATEGORIES:
            errors["categories"] = f"at most {MAX_CATEGORIES} values"
        elif len({c.lower() for c in categories}) != len(categories):
            errors["categories"] = "values must be different from each other"
        elif any(len(c) > 100 for c in categories):
            errors["categories"] = "each value is limited to 100 characters"
    else:
        categories = []
    min_value = _number_or_none(errors, "min_value", merged.get("min_value"))
    max_value = _number_or_none(errors, "max_value", merged.get("max_value"))
    if output_type in ("integer", "float"):
        if min_value is not None and max_value is not None and min_value > max_value:
            errors["max_value"] = "must be at least the minimum"
        if output_type == "integer":
            for field, value in (("min_value", min_value), ("max_value", max_value)):
                if value is not None and not float(value).is_integer():
                    errors[field] = "must be a whole number for an integer judge"
    else:
        min_value = max_value = None

    endpoint = merged.get("endpoint")
    # By id (a number or ASCII digits) or by name.
    endpoint_pk = endpoint if isinstance(endpoint, int) and not isinstance(endpoint, bool) else None
    if isinstance(endpoint, str):
        endpoint_pk = whole_number(endpoint)
    if endpoint_pk is not None:
        endpoint = ModelEndpoint.objects.filter(pk=endpoint_pk).first() or endpoint
    elif isinstance(endpoint, str):
        endpoint = ModelEndpoint.objects.filter(name=endpoint).first() or endpoint
    if not isinstance(endpoint, ModelEndpoint):
        errors["endpoint"] = "choose a model endpoint" if endpoint in (None, "") else f"no model endpoint {endpoint!r}"

    sample_rate = _number_or_none(errors, "sample_rate", merged.get("sample_rate", 1.0))
    if sample_rate is None and "sample_rate" not in errors:
        sample_rate = 1.0
    if sample_rate is not None and not 0 <= sample_rate <= 1:
        errors["sample_rate"] = "must be between 0 and 1 (0% to 100%)"

    filter_string = str(merged.get("filter_string") or "").strip()
    filter_error = validate_filter_string(filter_string) if filter_string else None
    if filter_error:
        errors["filter_string"] = filter_error

    idle = merged.get("session_idle_seconds")
    if idle in ("", None):
        idle = None
    elif scope != Scope.SESSION:
        if "session_idle_seconds" in data:
            errors["session_idle_seconds"] = "only session judges wait for a conversation to go idle"
        idle = None
    else:
        idle = _positive_int(errors, "session_idle_seconds", idle, minimum=10, maximum=7 * 86400, required=False)

    cap = _decimal(errors, "daily_cost_cap_usd", merged.get("daily_cost_cap_usd"), column=Judge._meta.get_field("daily_cost_cap_usd"))
    active = merged.get("active", False)
    if not isinstance(active, bool):
        errors["active"] = "must be true or false"
    if errors:
        raise ConfigError(errors)
    return {
        "name": name,
        "scope": scope,
        "builtin_key": builtin_key,
        "instructions": instructions,
        "output_type": output_type,
        "categories": categories,
        "min_value": min_value,
        "max_value": max_value,
        "endpoint": endpoint,
        "sample_rate": sample_rate,
        "filter_string": filter_string,
        "active": bool(merged.get("active", False)),
        "session_idle_seconds": idle,
        "daily_cost_cap_usd": cap,
    }


def _snapshot(judge: Judge, user) -> JudgeVersion:
    return JudgeVersion.objects.create(judge=judge, version=judge.version, config=judge.behaviour(), created_by=user)


def create_judge(experiment: Experiment, *, user=None, **data: Any) -> Judge:
    clean = clean_judge(experiment, data, instance=None)
    now = timezone.now()
    try:
        with transaction.atomic():
            judge = Judge.objects.create(
                experiment=experiment,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                enabled_at=now if clean["active"] else None,
                created_at=now,
                updated_at=now,
                **clean,
            )
            _snapshot(judge, judge.created_by)
            if judge.active:
                _after_commit("backfill", judge.pk)
    except IntegrityError:  # a concurrent create with the same name
        raise ConfigError({"name": f"this experiment already has a judge named {clean['name']!r}"}) from None
    logger.info("created judge %s (v1) in experiment %s", judge.name, experiment.pk)
    return judge


@transaction.atomic
def update_judge(judge: Judge, *, user=None, **data: Any) -> Judge:
    """Apply changes; a change to what the judge asks or judges makes a new version. Switching "active" on
    starts its one-hour look-back from now; results already recorded are not re-judged."""
    judge = Judge.objects.select_for_update().get(pk=judge.pk)
    before = judge.behaviour()
    was_active = judge.active
    clean = clean_judge(judge.experiment, data, instance=judge)
    for field, value in clean.items():
        setattr(judge, field, value)
    now = timezone.now()
    if judge.active and not was_active:
        judge.enabled_at = now
    if judge.behaviour() != before:
        judge.version += 1
        _snapshot(judge, user if getattr(user, "is_authenticated", False) else None)
    judge.updated_at = now
    judge.save()
    if was_active and not judge.active:
        # Off means off now: queued work for it is dropped (what is already running finishes).
        # Jobs asked for by hand (judges.jobs) still run.
        Evaluation.objects.filter(judge=judge, status=EvaluationStatus.PENDING, manual=False).update(
            status=EvaluationStatus.CANCELLED, finished_at=now
        )
    elif judge.active and (not was_active or judge.behaviour() != before):
        _after_commit("backfill", judge.pk)
    return judge


@transaction.atomic
def delete_judge(judge: Judge) -> None:
    """Delete a judge and its queued work. Its assessments stay: they are history, recorded under the judge's
    name and version."""
    logger.info("deleting judge %s (v%s) of experiment %s", judge.name, judge.version, judge.experiment_id)
    judge.delete()


def _after_commit(function: str, *args) -> None:
    from judges.tasks import after_commit

    after_commit(function, *args)


# --- running a judge by hand ----------------------------------------------------------------------------


def _record(judge: Judge, outcome: Outcome, *, trace: Trace | None = None, session: Session | None = None) -> Assessment:
    result = outcome.result
    metadata: dict[str, Any] = {"endpoint": judge.endpoint.name, "attempts": result.attempts}
    if result.output_mode:
        metadata["output_mode"] = result.output_mode
    if outcome.truncated:
        metadata["truncated"] = True
    if judge.endpoint.is_standin:
        metadata["standin"] = True
    target = {"trace": trace} if trace is not None else {"session": session}
    previous = Assessment.objects.filter(name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True, **target).order_by("-created_at", "-pk")
    latest = previous.first()
    assessment = Assessment.objects.create(
        **target,
        name=judge.name,
        value=result.value if result.ok else None,
        rationale=result.rationale,
        source_type=AssessmentSource.LLM_JUDGE,
        source_id=f"judge:{judge.pk}",
        judge_name=judge.name,
        judge_version=judge.version,
        model=judge.endpoint.model,
        error_code=result.error_code,
        error_message=result.error_message,
        cost_usd=result.cost_usd,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        latency_ms=result.latency_ms,
        overrides=latest,
        metadata=metadata,
    )
    if latest is not None:
        previous.exclude(pk=assessment.pk).update(valid=False)
    if result.ok and result.output_mode and judge.endpoint.output_mode == OutputMode.AUTO and judge.endpoint.detected_output_mode != result.output_mode:
        ModelEndpoint.objects.filter(pk=judge.endpoint_id).update(detected_output_mode=result.output_mode)
    if result.error_code == AUTHENTICATION:
        pause_judge(judge, f"Authentication failed at {judge.endpoint.name}: {result.error_message} Fix the API key on the model endpoint; the judge resumes when the key changes.")
    return assessment


def pause_judge(judge: Judge, reason: str) -> None:
    Judge.objects.filter(pk=judge.pk).update(paused_reason=reason, paused_at=timezone.now())
    judge.paused_reason = reason
    logger.warning("paused judge %s: %s", judge.name, reason)


def _record_by_hand(judge: Judge, outcome: Outcome, started, **target) -> Assessment:
    with transaction.atomic():
        assessment = _record(judge, outcome, **target)
        session = target.get("session")
        Evaluation.objects.create(
            judge=judge,
            judge_version=judge.version,
            session_generation=session.trace_count if session is not None else 0,
            manual=True,
            status=EvaluationStatus.DONE if outcome.ok else EvaluationStatus.ERROR,
            attempts=1,
            assessment=assessment,
            error_code=outcome.result.error_code,
            error_message=outcome.result.error_message,
            cost_usd=outcome.result.cost_usd,
            started_at=started,
            finished_at=timezone.now(),
            **target,
        )
    return assessment


def run_judge_on_trace(judge: Judge, trace: Trace) -> Assessment:
    """Judge one trace now (by hand: ignores sampling, filter and on/off) and record the result."""
    if trace.experiment_id != judge.experiment_id:
        raise ConfigError({"trace": f"trace {trace.trace_id} is not in the judge's experiment"})
    if judge.scope != Scope.TRACE:
        raise ConfigError({"trace": f"{judge.name} judges sessions, not single traces"})
    started = timezone.now()
    return _record_by_hand(judge, evaluate_trace(definition_of(judge), trace), started, trace=trace)


def run_judge_on_session(judge: Judge, session: Session) -> Assessment:
    """Judge one conversation now, whatever its idle time, and record the result."""
    if session.experiment_id != judge.experiment_id:
        raise ConfigError({"session": f"session {session.session_id} is not in the judge's experiment"})
    if judge.scope != Scope.SESSION:
        raise ConfigError({"session": f"{judge.name} judges single traces, not sessions"})
    started = timezone.now()
    return _record_by_hand(judge, evaluate_session(definition_of(judge), session), started, session=session)
