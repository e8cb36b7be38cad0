"""State changes for model endpoints (create, update, test the connection). The UI, the API and the admin all
go through here."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from judges import audit, queue, tasks
from judges.actions import new_versions_for_endpoint
from judges.egress import EgressRefused
from judges.errors import ConfigError
from judges.llm import ERROR_TITLES, CallResult, complete
from judges.models import Judge, ModelEndpoint, OutputMode
from judges.preparation import egress_policy, endpoint_config
from judges.validation import decimal_amount, positive_int, text

logger = logging.getLogger(__name__)

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
    "outage_retry_seconds",
    "use_server_key",
)

SERVER_KEY_ADMINS_ONLY = "only an admin (staff) may let an endpoint use the server's own API keys; give the endpoint a key instead"


def _clean_server_key(errors: dict[str, str], clean: dict[str, Any], data: dict[str, Any], instance: ModelEndpoint | None, allow_server_key: bool) -> None:
    """`use_server_key`: set only by an admin, and only for the provider's own address."""
    wanted = data.get("use_server_key", instance.use_server_key if instance else False)
    if not isinstance(wanted, bool):
        errors["use_server_key"] = "must be true or false"
        return
    if "use_server_key" in data and wanted != (instance.use_server_key if instance else False) and not allow_server_key:
        errors["use_server_key"] = SERVER_KEY_ADMINS_ONLY
        return
    api_base = clean.get("api_base", instance.api_base if instance else "")
    if wanted and api_base:
        errors["use_server_key"] = "the server's keys go only to the provider's own address: leave api_base empty, or give this endpoint a key"
    if "use_server_key" in data:
        clean["use_server_key"] = wanted


def _provider(model: str) -> str:
    """litellm's provider prefix ("openai" of "openai/gpt-4.1-mini"); "" when the model names none."""
    return model.split("/", 1)[0] if "/" in model else ""


def clean_endpoint(data: dict[str, Any], *, instance: ModelEndpoint | None, allow_server_key: bool = False) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "name" in data or instance is None:
        name = text(errors, "name", data.get("name"), max_chars=10_000)
        if "name" in errors:
            pass
        elif not name:
            errors["name"] = "is required"
        elif len(name) > 100:
            errors["name"] = "is longer than 100 characters"
        elif ModelEndpoint.objects.filter(name=name).exclude(pk=instance.pk if instance else None).exists():
            errors["name"] = f"an endpoint named {name!r} already exists"
        clean["name"] = name
    if "model" in data or instance is None:
        model = text(errors, "model", data.get("model"), max_chars=10_000)
        if "model" in errors:
            pass
        elif not model:
            errors["model"] = "is required: a litellm model string such as openai/gpt-4.1-mini"
        elif " " in model or len(model) > 200:
            errors["model"] = "must be a litellm model string without spaces, such as openai/gpt-4.1-mini"
        clean["model"] = model
    if "api_base" in data:
        api_base = text(errors, "api_base", data.get("api_base"), max_chars=500)
        if api_base:
            parts = urlsplit(api_base)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["api_base"] = "must be an http:// or https:// URL, e.g. http://127.0.0.1:8910/v1"
            else:
                try:
                    egress_policy().check_url(api_base)
                except EgressRefused as refusal:
                    errors["api_base"] = str(refusal)
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
    limits = {
        "max_concurrency": (1, 256, True),
        "timeout_seconds": (1, 600, True),
        "max_retries": (0, 10, True),
        "outage_retry_seconds": (0, 7 * 86400, True),
    }
    for field, (minimum, maximum, required) in limits.items():
        if field in data:
            clean[field] = positive_int(errors, field, data[field], minimum=minimum, maximum=maximum, required=required)
    if "requests_per_minute" in data:
        clean["requests_per_minute"] = positive_int(errors, "requests_per_minute", data["requests_per_minute"], maximum=1_000_000, required=False)
    if "context_window" in data:
        clean["context_window"] = positive_int(errors, "context_window", data["context_window"], minimum=1000, maximum=10_000_000, required=False)
    for field in ("input_cost_per_million", "output_cost_per_million"):
        if field in data:
            clean[field] = decimal_amount(errors, field, data[field], column=ModelEndpoint._meta.get_field(field))
    if "output_mode" in data:
        mode = data.get("output_mode") or OutputMode.AUTO
        if mode not in OutputMode.values:
            errors["output_mode"] = f"must be one of {', '.join(OutputMode.values)}"
        clean["output_mode"] = mode
    if "is_standin" in data:
        if not isinstance(data["is_standin"], bool):
            errors["is_standin"] = "must be true or false"
        clean["is_standin"] = bool(data["is_standin"])
    _clean_server_key(errors, clean, data, instance, allow_server_key)
    unknown = set(data) - set(ENDPOINT_FIELDS) - {"api_key", "clear_api_key"}
    for field in sorted(unknown):
        errors[field] = "is not an endpoint setting"
    if errors:
        raise ConfigError(errors)
    return {key: value for key, value in clean.items() if not (key in limits and value is None)}


@transaction.atomic
def create_endpoint(*, allow_server_key: bool = False, user: Any = None, **data: Any) -> ModelEndpoint:
    """`allow_server_key`: the caller is an admin, who may let the endpoint use the server's own API keys."""
    api_key = data.pop("api_key", "") or ""
    data.pop("clear_api_key", None)
    clean = clean_endpoint(data, instance=None, allow_server_key=allow_server_key)
    endpoint = ModelEndpoint(**clean)
    endpoint.set_api_key(str(api_key).strip())
    endpoint.save()
    audit.record("created", user=user, endpoint=endpoint, changes=audit.diff({}, clean))
    logger.info("created model endpoint %s (%s)", endpoint.name, endpoint.model)
    return endpoint


@transaction.atomic
def update_endpoint(endpoint: ModelEndpoint, *, allow_server_key: bool = False, user: Any = None, **data: Any) -> ModelEndpoint:
    """Change settings. The API key changes only if a new one is given (or `clear_api_key`); it is write-only.
    A new address or provider drops the stored key unless a new one comes with it (`endpoint.key_dropped` says
    so): a key must never follow the endpoint to a server its owner didn't give it to."""
    api_key = data.pop("api_key", None)
    clear_api_key = bool(data.pop("clear_api_key", False))
    clean = clean_endpoint(data, instance=endpoint, allow_server_key=allow_server_key)
    before = {field: getattr(endpoint, field) for field in clean}
    moved = clean.get("api_base", endpoint.api_base) != endpoint.api_base or _provider(clean.get("model", endpoint.model)) != _provider(endpoint.model)
    changed = []
    for field, value in clean.items():
        if getattr(endpoint, field) != value:
            setattr(endpoint, field, value)
            changed.append(field)
    if {"model", "api_base", "output_mode"} & set(changed):
        endpoint.detected_output_mode = ""
        changed.append("detected_output_mode")
    endpoint.key_dropped = False
    if api_key:
        endpoint.set_api_key(str(api_key).strip())
        changed.append("api_key_encrypted")
    elif clear_api_key or (moved and endpoint.api_key_encrypted):
        endpoint.key_dropped = not clear_api_key
        endpoint.api_key_encrypted = ""
        changed.append("api_key_encrypted")
    if changed:
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=[*set(changed), "updated_at"])
        audit.record("edited", user=user, endpoint=endpoint, changes={**audit.diff(before, clean), **({"api_key": ["(hidden)", "(changed)" if endpoint.has_api_key else "(removed)"]} if "api_key_encrypted" in changed else {})})
    if "model" in changed:
        new_versions_for_endpoint(endpoint)
    if "api_key_encrypted" in changed or "model" in changed or "api_base" in changed:
        # A fixed key or model is the way out of an authentication pause.
        resumed = Judge.objects.filter(endpoint=endpoint, paused_reason__startswith="Authentication").update(paused_reason="", paused_at=None)
        if resumed:
            queue.enqueue_on_commit(tasks.sweep)
    return endpoint


def check_connection(endpoint: ModelEndpoint) -> tuple[bool, str]:
    """One tiny call. (True, how it went) or (False, what failed). Nothing the far end sent is repeated — a test
    connection must not become a way to read another server's answers (judges.egress): the reply shows only when
    it is the "OK" asked for, and a failure by its kind, the provider's error class and the HTTP status."""
    config = endpoint_config(endpoint)
    config.max_retries = 0
    result = complete(config, [{"role": "user", "content": "Reply with the word OK."}], None, max_tokens=5)
    if result.ok:
        reply = (result.raw_content or "").strip()
        said = "it replied 'OK'" if reply.strip(" .!\"'").lower() == "ok" else f"it replied with {len(reply)} characters (not shown)"
        return True, f"Connected to {endpoint.model} in {result.latency_ms} ms; {said}."
    return False, connection_failure(result)


def connection_failure(result: CallResult) -> str:
    title = ERROR_TITLES.get(result.error_code, result.error_code)
    if not result.error_class:  # evalapp's own words (a refused address), not the provider's
        return f"{title}: {result.error_message}"
    status = f" (HTTP {result.http_status})" if result.http_status else ""
    return f"{title}: {result.error_class}{status} from the provider; its message is not shown here."
