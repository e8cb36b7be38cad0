"""The feedback form of the trace page and of the conversation page: what it is about (thumbs, or one of the
page's judges) and the value typed, read by traces.feedback like everything else that stores feedback."""

from __future__ import annotations

from typing import Any

from judges.models import Judge
from traces.feedback import THUMBS, FeedbackError, read_value


def feedback_names(judges: list[Judge]) -> list[str]:
    """The form's "About" choices: thumbs first, then the page's judges."""
    return [THUMBS] + [judge.name for judge in judges]


def read_feedback_form(name: str, text: str, judges: list[Judge], *, scope: str) -> tuple[str, Any, dict[str, str]]:
    """(name, value, errors by field) from what was posted: the name must be thumbs (the default) or one of
    `judges`, this page's judges of `scope` ("trace" | "session"); the value must fit that judge."""
    name = name or THUMBS
    judge = next((judge for judge in judges if judge.name == name), None)
    errors: dict[str, str] = {}
    if name != THUMBS and judge is None:
        errors["name"] = f"Choose what the feedback is about: thumbs or one of this experiment's {scope} judges."
    value = None
    try:
        value = read_value(text, judge.value_rule if judge is not None else None)
    except FeedbackError as error:
        errors.update(error.errors)
    return name, value, errors
