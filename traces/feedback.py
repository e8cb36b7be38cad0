"""People's verdicts: a HUMAN assessment on a trace or a session (thumbs up/down, a value, a comment).

The one place that says what a feedback value may be: the trace page, the conversation page and the API all end in
`add_feedback`, and the pages read what a person typed with `read_value`. Feedback under a judge's name must be a
value that judge could give (yes/no, a number, a whole number, one of its categories); the judges app says which
(the `feedback_value_rule` signal), as traces knows nothing of judges.

A person's newer feedback under the same name replaces their earlier one (which stays, marked not valid and
pointed at by `overrides`); judges' assessments are never touched by feedback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import transaction

from traces.models import Assessment, AssessmentSource, Session, Trace
from traces.signals import feedback_value_rule

MAX_NAME = 200
MAX_TEXT_VALUE = 500
MAX_RATIONALE = 10_000
THUMBS = "thumbs"  # the name of a plain good/bad verdict (👍 = true, 👎 = false)
YES_WORDS = frozenset({"yes", "true", "pass", "good", "y", "1"})
NO_WORDS = frozenset({"no", "false", "fail", "bad", "n", "0"})


class FeedbackError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


class ValueKind(StrEnum):
    YES_NO = "yes_no"
    NUMBER = "number"
    WHOLE_NUMBER = "whole_number"
    TEXT = "text"


@dataclass(frozen=True)
class ValueRule:
    """What feedback under a judge's name must be: the kind of value the judge gives, and its categories if it
    answers with one of them. Made by the judges app (`Judge.value_rule`)."""

    judge: str
    kind: ValueKind
    categories: tuple[str, ...] = ()


def value_rule(experiment_id: int, scope: str, name: str) -> ValueRule | None:
    """The rule for feedback named `name` on a trace or a session ("trace" | "session") of the experiment: the
    judge's of that name and scope, else None (thumbs, or a name of the person's own)."""
    for _, rule in feedback_value_rule.send(sender=Assessment, experiment_id=experiment_id, scope=scope, name=name):
        if rule is not None:
            return rule
    return None


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_value(text: str, rule: ValueRule | None = None) -> Any:
    """What a person typed, as the value to store: yes/no words become true/false (unless the judge answers with
    numbers), numbers become numbers, anything else stays text; a judge that answers with text or a category gets
    the text as typed. Raises FeedbackError on "value" when it is empty or doesn't fit `rule`."""
    text = text.strip()
    if not text:
        raise FeedbackError({"value": "Give a value: yes or no, a number, or a category."})
    if rule is not None and rule.kind == ValueKind.TEXT:
        value: Any = text
    elif text.lower() in YES_WORDS | NO_WORDS and not (rule and rule.kind in (ValueKind.NUMBER, ValueKind.WHOLE_NUMBER)):
        value = text.lower() in YES_WORDS
    else:
        number = _number(text)
        value = text if number is None else number
    check_value(value, rule)
    return value


def check_value(value: Any, rule: ValueRule | None) -> None:
    """Raises FeedbackError on "value" when `value` is not one the rule's judge could give."""
    if rule is None:
        return
    judge = rule.judge
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if rule.kind == ValueKind.YES_NO and not isinstance(value, bool):
        raise FeedbackError({"value": f"{judge} answers yes or no."})
    if rule.kind in (ValueKind.NUMBER, ValueKind.WHOLE_NUMBER) and not is_number:
        raise FeedbackError({"value": f"{judge} answers with a number."})
    if rule.kind == ValueKind.WHOLE_NUMBER and isinstance(value, float):
        raise FeedbackError({"value": f"{judge} answers with a whole number."})
    if rule.kind == ValueKind.TEXT and rule.categories and value not in rule.categories:
        raise FeedbackError({"value": f"{judge} answers one of: {', '.join(rule.categories)}."})
    if rule.kind == ValueKind.TEXT and not isinstance(value, str):
        raise FeedbackError({"value": f"{judge} answers with text."})


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
    """Record `user`'s verdict on one trace or one session. Raises FeedbackError naming the field that is wrong."""
    if (trace is None) == (session is None):
        raise FeedbackError({"trace_id": "give feedback on either a trace or a session"})
    errors = _clean(name, value, rationale)
    if errors:
        raise FeedbackError(errors)
    experiment_id = trace.experiment_id if trace is not None else session.experiment_id
    check_value(value, value_rule(experiment_id, "trace" if trace is not None else "session", name.strip()))
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


def add_client_assessment(
    *,
    trace: Trace,
    name: str,
    value: Any,
    source_type: str,
    source_id: str,
    rationale: str = "",
    metadata: dict[str, str] | None = None,
    error_code: str = "",
    error_message: str = "",
    overrides: Assessment | None = None,
) -> Assessment:
    """Record a verdict an instrumented app logged on a trace (MLflow's `log_feedback` / `log_expectation`), as a
    HUMAN or CODE assessment: a newer one of the same name from the same source replaces the earlier one (as a
    person's feedback does), or the one it names in `overrides`. A HUMAN verdict under a judge's name must be a
    value that judge gives. Raises FeedbackError naming the field that is wrong."""
    if source_type not in (AssessmentSource.HUMAN, AssessmentSource.CODE):
        raise FeedbackError({"source_type": "must be HUMAN or CODE"})
    if not name.strip() or len(name.strip()) > MAX_NAME:
        raise FeedbackError({"name": f"is required, at most {MAX_NAME} characters"})
    if len(rationale) > MAX_RATIONALE:
        raise FeedbackError({"rationale": f"at most {MAX_RATIONALE:,} characters"})
    if value is None and not error_code:
        raise FeedbackError({"value": "is required (or an error)"})
    if source_type == AssessmentSource.HUMAN:
        check_value(value, value_rule(trace.experiment_id, "trace", name.strip()))
    with transaction.atomic():
        if overrides is None:
            overrides = (
                Assessment.objects.select_for_update()
                .filter(trace=trace, name=name.strip(), source_type=source_type, source_id=source_id, valid=True)
                .order_by("-created_at", "-pk")
                .first()
            )
        if overrides is not None:
            Assessment.objects.filter(pk=overrides.pk).update(valid=False)
        return Assessment.objects.create(
            trace=trace,
            name=name.strip(),
            value=value,
            rationale=rationale.strip(),
            source_type=source_type,
            source_id=source_id,
            metadata=metadata or {},
            error_code=error_code,
            error_message=error_message,
            overrides=overrides,
        )
