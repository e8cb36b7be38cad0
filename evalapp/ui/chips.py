"""Verdicts as coloured chips: the same colour for the same meaning on every page (see .chip-* in app.css).

kinds: pass / fail (yes-no), category, number, text, pending / running / waiting, error, none (not judged),
human (a person's feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judges.llm import ERROR_TITLES
from judges.states import JudgeState

NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Chip:
    kind: str
    label: str
    title: str = ""


def format_value(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if value is None:
        return "—"
    return str(value)


def chip_for_value(value: Any, *, title: str = "") -> Chip:
    if isinstance(value, bool):
        return Chip("pass" if value else "fail", format_value(value), title)
    if isinstance(value, (int, float)):
        return Chip("number", format_value(value), title)
    text = format_value(value)
    if isinstance(value, str) and len(text) > 40:
        return Chip("text", text[:37] + "…", title or text)
    return Chip("category", text, title)


def chip_for_error(error_code: str, error_message: str) -> Chip:
    if error_code == NOT_APPLICABLE:
        return Chip("none", "n/a", error_message or "not applicable to this trace")
    title = ERROR_TITLES.get(error_code, error_code or "error")
    return Chip("error", "error", f"{title}: {error_message}" if error_message else title)


def chip_for_assessment(assessment: Any) -> Chip:
    """From a traces.models.Assessment (LLM judge, human or code)."""
    if assessment.error_code:
        return chip_for_error(assessment.error_code, assessment.error_message)
    title = assessment.rationale[:300] if assessment.rationale else ""
    chip = chip_for_value(assessment.value, title=title)
    if assessment.source_type == "HUMAN" and chip.kind not in ("pass", "fail"):
        return Chip("human", chip.label, chip.title)
    return chip


STATE_CHIPS = {
    "pending": ("pending", "pending"),
    "running": ("running", "judging…"),
    "waiting_for_idle": ("waiting", "waiting"),
    "in_progress": ("waiting", "in progress"),
    "paused": ("error", "paused"),
    "error": ("error", "error"),
}


def chip_for_state(state: str, text: str) -> Chip:
    """From a judges.states.JudgeState (`state`, `text`): not-judged states show as a grey chip saying why on hover."""
    kind, label = STATE_CHIPS.get(state, ("none", "not judged"))
    return Chip(kind, label, text)


def chip_for_judge_state(state: JudgeState) -> Chip:
    """One judge's cell in a table (Traces, Sessions): its verdict, or a chip whose title says why there is none."""
    if state.assessment is not None and state.state in ("judged", "error"):
        return chip_for_assessment(state.assessment)
    return chip_for_state(state.state, state.text)


PENDING_STATES = frozenset({"pending", "running"})
