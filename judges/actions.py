"""State changes for judges: create, update (a new version when what it asks or judges changes), delete. Views,
the API, the admin and commands all go through here. (Endpoints: judges.endpoint_actions. Judging itself:
judges.manual by hand, judges.worker in the background.)"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from judges import audit, queue, tasks
from judges.catalog import BUILTIN_JUDGES
from judges.errors import ConfigError
from judges.models import Evaluation, EvaluationStatus, Judge, JudgeVersion, ModelEndpoint, OutputType, Scope
from judges.templating import TemplateError, validate_instructions
from judges.validation import decimal_amount, finite_number, positive_int, text
from traces import filters
from traces.models import Experiment
from traces.payload import whole_number

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}$")
MAX_CATEGORIES = 20
# Instructions are the judge's prompt: 64 KiB is far beyond any real one, and keeps a paste from filling the database.
MAX_INSTRUCTIONS_CHARS = 64 * 1024


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


def _clean_name(experiment: Experiment, errors: dict[str, str], data: dict[str, Any], merged: dict[str, Any], instance: Judge | None) -> str:
    name = text(errors, "name", merged.get("name"), max_chars=100)
    if instance is not None:
        if "name" in data and name != instance.name:
            errors["name"] = "can't be changed: results are recorded under the judge's name. Create a new judge instead."
        return instance.name
    if "name" in errors:
        pass
    elif not name:
        errors["name"] = "is required"
    elif not NAME_PATTERN.match(name):
        errors["name"] = "use up to 100 letters, digits, spaces, '_', '-' or '.', starting with a letter or digit"
    elif Judge.objects.filter(experiment=experiment, name=name).exists():
        errors["name"] = f"this experiment already has a judge named {name!r}"
    return name


def _clean_kind(
    errors: dict[str, str], data: dict[str, Any], merged: dict[str, Any], instance: Judge | None, *, guidelines_optional: bool = False
) -> tuple[str, str, str]:
    """Scope, built-in key and instructions: what the judge is."""
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
    instructions = text(errors, "instructions", merged.get("instructions"), max_chars=MAX_INSTRUCTIONS_CHARS, strip=False)
    if "instructions" in errors:
        pass
    elif builtin is None:
        try:
            validate_instructions(instructions, scope)
        except TemplateError as error:
            errors["instructions"] = str(error)
    elif "guidelines" in builtin.requires and not instructions.strip() and not guidelines_optional:
        errors["instructions"] = f"{builtin.label} needs guidelines: write the rules the response must follow"
    return scope, builtin_key, instructions


def _clean_categories(errors: dict[str, str], categories: Any) -> list[str]:
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        errors["categories"] = "must be a list of text values"
        return []
    categories = [c.strip() for c in categories if c.strip()]
    if len(categories) < 2:
        errors["categories"] = "give at least two allowed values"
    elif len(categories) > MAX_CATEGORIES:
        errors["categories"] = f"at most {MAX_CATEGORIES} values"
    elif len({c.lower() for c in categories}) != len(categories):
        errors["categories"] = "values must be different from each other"
    elif any(len(c) > 100 for c in categories):
        errors["categories"] = "each value is limited to 100 characters"
    return categories


def _clean_output(errors: dict[str, str], data: dict[str, Any], merged: dict[str, Any], builtin_key: str, creating: bool) -> dict[str, Any]:
    """Output type and what it allows: categories, or a numeric range."""
    builtin = BUILTIN_JUDGES.get(builtin_key)
    output_type = merged.get("output_type") or (builtin.output_type if builtin else OutputType.BOOLEAN)
    if "output_type" not in data and creating and builtin is not None:
        output_type = builtin.output_type
    if output_type not in OutputType.values:
        errors["output_type"] = f"must be one of {', '.join(OutputType.values)}"
    categories: list[str] = []
    if output_type == "categorical":
        wanted = merged.get("categories") or (list(builtin.categories) if builtin is not None else [])
        categories = _clean_categories(errors, wanted)
    min_value = finite_number(errors, "min_value", merged.get("min_value"))
    max_value = finite_number(errors, "max_value", merged.get("max_value"))
    if output_type in ("integer", "float"):
        if min_value is not None and max_value is not None and min_value > max_value:
            errors["max_value"] = "must be at least the minimum"
        if output_type == "integer":
            for field, value in (("min_value", min_value), ("max_value", max_value)):
                if value is not None and not float(value).is_integer():
                    errors[field] = "must be a whole number for an integer judge"
    else:
        min_value = max_value = None
    return {"output_type": output_type, "categories": categories, "min_value": min_value, "max_value": max_value}


def _clean_endpoint_ref(errors: dict[str, str], endpoint: Any) -> ModelEndpoint | None:
    """An endpoint given by id (a number or ASCII digits), by name, or as the object."""
    endpoint_pk = endpoint if isinstance(endpoint, int) and not isinstance(endpoint, bool) else None
    if isinstance(endpoint, str):
        endpoint_pk = whole_number(endpoint)
    if endpoint_pk is not None:
        endpoint = ModelEndpoint.objects.filter(pk=endpoint_pk).first() or endpoint
    elif isinstance(endpoint, str):
        endpoint = ModelEndpoint.objects.filter(name=endpoint).first() or endpoint
    if isinstance(endpoint, ModelEndpoint):
        return endpoint
    errors["endpoint"] = "choose a model endpoint" if endpoint in (None, "") else f"no model endpoint {endpoint!r}"
    return None


def _clean_automation(errors: dict[str, str], data: dict[str, Any], merged: dict[str, Any], scope: str) -> dict[str, Any]:
    """What automatic evaluation judges: on/off, sample rate, filter, session idle time, spend cap."""
    sample_rate = finite_number(errors, "sample_rate", merged.get("sample_rate", 1.0))
    if sample_rate is None and "sample_rate" not in errors:
        sample_rate = 1.0
    if sample_rate is not None and not 0 <= sample_rate <= 1:
        errors["sample_rate"] = "must be between 0 and 1 (0% to 100%)"
    elif sample_rate is not None:
        sample_rate += 0.0  # -0.0 → 0.0
    # Only its type here: the filter language states its own limits (EVALAPP_FILTER_MAX_LENGTH and the rest).
    filter_string = text(errors, "filter_string", merged.get("filter_string"), max_chars=10**6)
    filter_error = filters.validate(filter_string) if filter_string else None
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
        idle = positive_int(errors, "session_idle_seconds", idle, minimum=10, maximum=7 * 86400, required=False)
    cap = decimal_amount(errors, "daily_cost_cap_usd", merged.get("daily_cost_cap_usd"), column=Judge._meta.get_field("daily_cost_cap_usd"))
    active = merged.get("active", False)
    if not isinstance(active, bool):
        errors["active"] = "must be true or false"
    return {
        "sample_rate": sample_rate,
        "filter_string": filter_string,
        "active": bool(active),
        "session_idle_seconds": idle,
        "daily_cost_cap_usd": cap,
    }


def clean_judge(experiment: Experiment, data: dict[str, Any], *, instance: Judge | None, guidelines_optional: bool = False) -> dict[str, Any]:
    """Every judge setting checked, for a new judge (`instance` None) or changes to one; raises ConfigError with
    every problem at once. Saves nothing, so "Try it" validates with the same rules. `guidelines_optional`: a
    built-in made for an evaluation run may leave its guidelines to each record's expectations."""
    errors: dict[str, str] = {}
    merged: dict[str, Any] = {field: getattr(instance, field) for field in JUDGE_FIELDS} if instance is not None else {}
    merged.update(data)
    for field in sorted(set(data) - set(JUDGE_FIELDS)):
        errors[field] = "is not a judge setting"
    name = _clean_name(experiment, errors, data, merged, instance)
    scope, builtin_key, instructions = _clean_kind(errors, data, merged, instance, guidelines_optional=guidelines_optional)
    output = _clean_output(errors, data, merged, builtin_key, creating=instance is None)
    endpoint = _clean_endpoint_ref(errors, merged.get("endpoint"))
    automation = _clean_automation(errors, data, merged, scope)
    if errors:
        raise ConfigError(errors)
    return {"name": name, "scope": scope, "builtin_key": builtin_key, "instructions": instructions, **output, "endpoint": endpoint, **automation}


def _snapshot(judge: Judge, user) -> JudgeVersion:
    return JudgeVersion.objects.create(judge=judge, version=judge.version, config=judge.behaviour(), created_by=user)


def next_version_number(judge: Judge) -> int:
    """The number a new version of the judge gets, live or shadow: one past every number used so far (a shadow
    version takes a number too, so a live edit made while a shadow runs skips it)."""
    used = JudgeVersion.all_objects.filter(judge_id=judge.pk).order_by("-version").values_list("version", flat=True).first()
    return max(judge.version, used or 0) + 1


def create_judge(experiment: Experiment, *, user=None, guidelines_optional: bool = False, **data: Any) -> Judge:
    clean = clean_judge(experiment, data, instance=None, guidelines_optional=guidelines_optional)
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
            audit.record("created", user=user, judge=judge, changes=audit.diff({}, {field: clean[field] for field in JUDGE_FIELDS}))
            if judge.active:
                queue.enqueue_on_commit(tasks.backfill, judge.pk)
    except IntegrityError:  # a concurrent create with the same name
        raise ConfigError({"name": f"this experiment already has a judge named {clean['name']!r}"}) from None
    logger.info("created judge %s (v1) in experiment %s", judge.name, experiment.pk)
    return judge


@transaction.atomic
def update_judge(judge: Judge, *, user=None, **data: Any) -> Judge:
    """Apply changes; a change to what the judge asks or judges makes a new version. Switching "active" on
    starts its one-hour look-back from now; changing an active judge affects only traffic from now on (older
    traces keep the decisions made under the old settings); results already recorded are not re-judged."""
    judge = Judge.objects.select_for_update().get(pk=judge.pk)
    settings_before = {field: getattr(judge, field) for field in JUDGE_FIELDS}
    before = judge.behaviour()
    was_active = judge.active
    clean = clean_judge(judge.experiment, data, instance=judge)
    for field, value in clean.items():
        setattr(judge, field, value)
    now = timezone.now()
    if judge.active and not was_active:
        judge.enabled_at = now
    version_before = judge.version
    if judge.behaviour() != before:
        judge.version = next_version_number(judge)
        _snapshot(judge, user if getattr(user, "is_authenticated", False) else None)
        if was_active and judge.active:
            judge.changed_at = now
    judge.updated_at = now
    judge.save()
    changes = audit.diff(settings_before, {field: getattr(judge, field) for field in JUDGE_FIELDS})
    if changes:
        action = {True: "switched on", False: "switched off"}.get(judge.active) if set(changes) == {"active"} else "edited"
        audit.record(action, user=user, judge=judge, changes={**changes, **({"version": [version_before, judge.version]} if judge.behaviour() != before else {})})
    if was_active and not judge.active:
        # Off means off now: queued work for it is dropped (what is already running finishes).
        # Jobs asked for by hand (judges.manual) still run.
        Evaluation.objects.filter(judge=judge, status=EvaluationStatus.PENDING, manual=False).update(
            status=EvaluationStatus.CANCELLED, finished_at=now
        )
    elif judge.active and not was_active:
        queue.enqueue_on_commit(tasks.backfill, judge.pk)
    return judge


def new_versions_for_endpoint(endpoint: ModelEndpoint, *, user=None) -> int:
    """The endpoint's model changed: every judge using it now says something else, so each gets a new version (a
    mark on the charts) and, when on, judges only new traffic with it. Returns how many judges changed."""
    now = timezone.now()
    changed = 0
    for judge in Judge.objects.select_for_update().filter(endpoint=endpoint).select_related("endpoint"):
        judge.version = next_version_number(judge)
        _snapshot(judge, user if getattr(user, "is_authenticated", False) else None)
        judge.changed_at = now if judge.active else judge.changed_at
        judge.updated_at = now
        judge.save(update_fields=["version", "changed_at", "updated_at"])
        changed += 1
    return changed


@transaction.atomic
def delete_judge(judge: Judge, *, user=None) -> None:
    """Delete a judge and its queued work. Its assessments stay: they are history, recorded under the judge's
    name and version."""
    audit.record("deleted", user=user, judge=judge, changes={"version": [judge.version, None]})
    logger.info("deleting judge %s (v%s) of experiment %s", judge.name, judge.version, judge.experiment_id)
    judge.delete()
