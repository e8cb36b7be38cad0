"""Forms for the judge and model-endpoint pages.

They only collect what was typed, as text, so a page re-rendered after an error shows everything exactly as
entered, and turn it into keyword arguments for judges.actions, which does all the validating. The one
conversion here is presentation: the sample rate is typed as a percentage and stored as 0..1.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from judges.catalog import BUILTIN_JUDGES
from judges.errors import ConfigError
from judges.models import Judge, ModelEndpoint, OutputMode, OutputType, Scope
from traces import strict_json


def _text(required: bool = False, strip: bool = True) -> forms.CharField:
    return forms.CharField(required=required, strip=strip)


def rate_to_percent(rate: float | None) -> str:
    if rate is None:
        return ""
    return f"{round(rate * 100, 4):g}"


def percent_to_rate(text: str) -> float | str:
    """30 → 0.3. Text that isn't a number goes to the action as typed, which says what is wrong with it."""
    try:
        return round(float(text) / 100, 6)
    except ValueError:
        return text


def _number_text(value: float | None, whole: bool = False) -> str:
    if value is None:
        return ""
    return str(int(value)) if whole and float(value).is_integer() else f"{value:g}"


class ActionForm(forms.Form):
    """A form whose rules live in an action: `ConfigError.errors` (keyed by setting) land on the matching field."""

    # action setting → form field, where the names differ
    FIELD_FOR_SETTING: dict[str, str] = {}

    def add_config_errors(self, error: ConfigError) -> None:
        for setting, message in error.errors.items():
            field = self.FIELD_FOR_SETTING.get(setting, setting)
            if field in self.fields:
                self.add_error(field, message)
            else:
                self.add_error(None, f"{setting}: {message}")

    def text(self, name: str) -> str:
        """What is in the field now (as typed on a bound form, else its initial value), as text."""
        value = self[name].value()
        return "" if value is None else str(value)


class JudgeForm(ActionForm):
    scope = _text()
    builtin_key = _text()
    name = _text()
    instructions = _text(strip=False)
    output_type = _text()
    categories = _text()  # one value per line
    min_value = _text()
    max_value = _text()
    endpoint = _text()
    active = forms.BooleanField(required=False)
    sample_rate_percent = _text()
    filter_string = _text()
    session_idle_seconds = _text()
    daily_cost_cap_usd = _text()

    FIELD_FOR_SETTING = {"sample_rate": "sample_rate_percent"}

    @classmethod
    def blank(cls, endpoints: list[ModelEndpoint]) -> JudgeForm:
        return cls(
            initial={
                "scope": Scope.TRACE,
                "builtin_key": "",
                "output_type": OutputType.BOOLEAN,
                # The only endpoint is the obvious choice; with several, make the person pick one.
                "endpoint": str(endpoints[0].pk) if len(endpoints) == 1 else "",
                "active": False,
                "sample_rate_percent": "100",
            }
        )

    @classmethod
    def of(cls, judge: Judge) -> JudgeForm:
        whole = judge.output_type == OutputType.INTEGER
        return cls(
            initial={
                "scope": judge.scope,
                "builtin_key": judge.builtin_key,
                "name": judge.name,
                "instructions": judge.instructions,
                "output_type": judge.output_type,
                "categories": "\n".join(judge.categories or []),
                "min_value": _number_text(judge.min_value, whole),
                "max_value": _number_text(judge.max_value, whole),
                "endpoint": str(judge.endpoint_id),
                "active": judge.active,
                "sample_rate_percent": rate_to_percent(judge.sample_rate),
                "filter_string": judge.filter_string,
                "session_idle_seconds": "" if judge.session_idle_seconds is None else str(judge.session_idle_seconds),
                "daily_cost_cap_usd": "" if judge.daily_cost_cap_usd is None else f"{judge.daily_cost_cap_usd.normalize():f}",
            }
        )

    # What the rest of the page is built from: the choices in the form right now.
    @property
    def scope_value(self) -> str:
        return self.text("scope") if self.text("scope") in Scope.values else Scope.TRACE

    @property
    def builtin(self):
        builtin = BUILTIN_JUDGES.get(self.text("builtin_key"))
        return builtin if builtin is not None and builtin.scope == self.scope_value else None

    @property
    def output_type_value(self) -> str:
        if self.builtin is not None:
            return self.builtin.output_type
        return self.text("output_type") if self.text("output_type") in OutputType.values else OutputType.BOOLEAN

    def action_data(self, *, judge: Judge | None) -> dict[str, Any]:
        """Keyword arguments for create_judge (judge=None) or update_judge. Name, scope and built-in are fixed
        once a judge exists, so an edit never sends them."""
        data = self.cleaned_data
        scope = judge.scope if judge is not None else self.scope_value
        builtin_key = judge.builtin_key if judge is not None else data["builtin_key"]
        settings: dict[str, Any] = {}
        if judge is None:
            settings.update(name=data["name"], scope=scope, builtin_key=builtin_key)
        settings["instructions"] = data["instructions"]
        if not builtin_key:  # a built-in judge's answer type comes with it
            output_type = data["output_type"] or OutputType.BOOLEAN
            settings["output_type"] = output_type
            if output_type == OutputType.CATEGORICAL:
                settings["categories"] = [line.strip() for line in data["categories"].splitlines() if line.strip()]
            if output_type in (OutputType.INTEGER, OutputType.FLOAT):
                settings["min_value"] = data["min_value"]
                settings["max_value"] = data["max_value"]
        settings["endpoint"] = data["endpoint"]
        settings["active"] = data["active"]
        settings["sample_rate"] = percent_to_rate(data["sample_rate_percent"]) if data["sample_rate_percent"] else ""
        settings["filter_string"] = data["filter_string"]
        if scope == Scope.SESSION:
            settings["session_idle_seconds"] = data["session_idle_seconds"]
        settings["daily_cost_cap_usd"] = data["daily_cost_cap_usd"]
        return settings


class EndpointForm(ActionForm):
    name = _text()
    model = _text()
    api_base = _text()
    # Write-only: never given an initial value and never rendered back (see endpoints/form.html).
    api_key = _text()
    clear_api_key = forms.BooleanField(required=False)
    inference_params = _text()
    max_concurrency = _text()
    requests_per_minute = _text()
    timeout_seconds = _text()
    max_retries = _text()
    input_cost_per_million = _text()
    output_cost_per_million = _text()
    context_window = _text()
    output_mode = _text()
    is_standin = forms.BooleanField(required=False)
    use_server_key = forms.BooleanField(required=False)  # shown to (and read from) admins only
    outage_retry_seconds = _text()

    NUMBER_FIELDS = (
        "max_concurrency",
        "requests_per_minute",
        "timeout_seconds",
        "max_retries",
        "input_cost_per_million",
        "output_cost_per_million",
        "context_window",
        "outage_retry_seconds",
    )

    @classmethod
    def blank(cls) -> EndpointForm:
        defaults = {
            field: ModelEndpoint._meta.get_field(field).get_default()
            for field in ("max_concurrency", "timeout_seconds", "max_retries", "outage_retry_seconds")
        }
        return cls(initial={**{field: str(value) for field, value in defaults.items()}, "output_mode": OutputMode.AUTO, "inference_params": ""})

    @classmethod
    def of(cls, endpoint: ModelEndpoint) -> EndpointForm:
        initial: dict[str, Any] = {
            "name": endpoint.name,
            "model": endpoint.model,
            "api_base": endpoint.api_base,
            "inference_params": json.dumps(endpoint.inference_params) if endpoint.inference_params else "",
            "output_mode": endpoint.output_mode,
            "is_standin": endpoint.is_standin,
            "use_server_key": endpoint.use_server_key,
        }
        for field in cls.NUMBER_FIELDS:
            value = getattr(endpoint, field)
            initial[field] = "" if value is None else (f"{value.normalize():f}" if hasattr(value, "normalize") else str(value))
        return cls(initial=initial)

    def action_data(self, *, endpoint: ModelEndpoint | None, staff: bool = False) -> dict[str, Any]:
        data = self.cleaned_data
        settings: dict[str, Any] = {field: data[field] for field in ("name", "model", "api_base", "output_mode", "is_standin", *self.NUMBER_FIELDS)}
        if "outage_retry_seconds" not in self.data:  # a form from before the setting existed: leave it as it is
            del settings["outage_retry_seconds"]
        if staff:  # only an admin sees the checkbox; for anyone else the setting is left as it is
            settings["use_server_key"] = data["use_server_key"]
        params_text = data["inference_params"].strip()
        try:
            settings["inference_params"] = strict_json.loads(params_text) if params_text else {}
        except ValueError:  # not JSON, or JSON no database stores (NaN, a NUL…): the action says what it must be
            settings["inference_params"] = params_text
        if data["api_key"]:
            settings["api_key"] = data["api_key"]
        if endpoint is not None and data["clear_api_key"]:
            settings["clear_api_key"] = True
        return settings
