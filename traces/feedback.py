"""People's verdicts: a HUMAN assessment on a trace or a session (thumbs up/down, a value, a comment).

A person's newer feedback under the same name replaces their earlier one (which stays, marked not valid and
pointed at by `overrides`); judges' assessments are never touched by feedback."""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction

from traces.models import Assessment, AssessmentSource, Session, Trace

MAX_NAME = 200
MAX_TEXT_VALUE = 500
MAX_RATIONALE = 10_000


class FeedbackError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def _clean(name: Any, value: Any, rationale: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "is required: what the feedback is about, e.g. a judge's name or 'thumbs'"
    elif len(name.strip()) > MAX_NAME:
        errors["name"] = f"at most {MAX_NAME} characters"
    if value is None or isinstance(value, (dict, list)):
        errors["value"] = "must be true/false, a number or a short text"
    elif isinstance(value, float) and not math.isfinite(value):
        errors["value"] = "must be a finite number"
    elif isinstance(value, str) and (not value.strip() or len(value) > MAX_TEXT_VALUE):
        errors["value"] = f"text values must be 1–{MAX_TEXT_VALUE} characters"
    if rationale is not None and not isinstance(rationale, str):
        errors["rationale"] = "must be text"
    elif rationale and len(rationale) > MAX_RATIONALE:
        errors["rationale"] = f"at most {MAX_RATIONALE:,} characters"
    return errors


def add_feedback(
    *, user: Any, name: Any, value: Any, rationale: Any = "", trace: Trace | None = None, session: Session | None = None
) -> Assessment:
    """Record `user`'s verdict on one trace or one session."""
    if (trace is None) == (session is None):
        raise FeedbackError({"trace_id": "give feedback on either a trace or a session"})
    errors = _clean(name, value, rationale)
    if errors:
        raise FeedbackError(errors)
    source_id = user.get_username()
    target = {"trace": trace} if trace is not None else {"session": session}
    with transaction.atomic():
        earlier = (
            Assessment.objects.select_for_update()
            .filter(**target, name=name.strip(), source_type=AssessmentSource.HUMAN, source_id=source_id, valid=True)
            .order_by("-created_at", "-pk")
            .first()
        )
        if earlier is not None:
            Assessment.objects.filter(pk=earlier.pk).update(valid=False)
        return Assessment.objects.create(
            **target,
            name=name.strip(),
            value=value,
            rationale=(rationale or "").strip(),
            source_type=AssessmentSource.HUMAN,
            source_id=source_id,
            overrides=earlier,
        )
