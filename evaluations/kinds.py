"""What can be said of a judge's verdicts, shared by a run's summary, its rows and the comparison of two runs."""

from __future__ import annotations

from typing import Any

from evaluations.models import EvaluationRun
from judges.models import EvaluationStatus

YES_NO_TYPES = frozenset({"boolean", "yes_no"})
NUMBER_TYPES = frozenset({"integer", "float", "number"})
# An evaluation in one of these states will not change any more: judging progress counts them as done.
FINISHED = (EvaluationStatus.DONE, EvaluationStatus.ERROR, EvaluationStatus.CANCELLED, EvaluationStatus.SKIPPED)


def kind_of(output_type: str) -> str:
    """"yes_no", "number" or "other": what can be said of a judge's verdicts (pass rate, mean, or counts only)."""
    if output_type in YES_NO_TYPES:
        return "yes_no"
    if output_type in NUMBER_TYPES:
        return "number"
    return "other"


def pinned(run: EvaluationRun) -> list[dict[str, Any]]:
    """The run's judges as pinned when it started (name, judge_id, version, output_type)."""
    return [entry for entry in (run.judges or []) if isinstance(entry, dict) and entry.get("name")]
