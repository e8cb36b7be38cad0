"""The audit log: who switched a judge on or off, edited or deleted it, or changed a model endpoint, when, and
what changed (before → after). Written by the actions, in their transaction, so a change and its record commit
together. An API key is never recorded: only that it changed."""

from __future__ import annotations

from typing import Any

from judges.models import AuditEvent, Judge, ModelEndpoint

SECRET_FIELDS = {"api_key_encrypted"}


def _person(user: Any):
    return user if getattr(user, "is_authenticated", False) else None


def _plain(value: Any) -> Any:
    if isinstance(value, ModelEndpoint):
        return value.name
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields that changed (secrets as "changed", never their value)."""
    changes: dict[str, list[Any]] = {}
    for field in sorted(set(before) | set(after)):
        old, new = _plain(before.get(field)), _plain(after.get(field))
        if old != new:
            changes[field] = ["(hidden)", "(changed)"] if field in SECRET_FIELDS else [old, new]
    return changes


def record(action: str, *, user: Any = None, judge: Judge | None = None, endpoint: ModelEndpoint | None = None, changes: dict | None = None) -> AuditEvent:
    subject = f"judge {judge.name}" if judge is not None else f"model endpoint {endpoint.name}"
    return AuditEvent.objects.create(
        experiment_id=judge.experiment_id if judge is not None else None,
        user=_person(user),
        action=action,
        subject=subject,
        changes=changes or {},
    )
