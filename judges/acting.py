"""What a shadow version says with: its settings, and the unsaved judge that acts for it (judges.shadow; the worker
judges a shadow's work with `acting_judge`). Apart from judges.shadow, which imports the actions, so the worker can
import this without a cycle."""

from __future__ import annotations

from typing import Any

from judges.models import Judge, JudgeVersion, ModelEndpoint


def version_settings(version: JudgeVersion) -> dict[str, Any]:
    """What a shadow version may change (judges.shadow.SHADOW_FIELDS), as judges.actions takes them."""
    config = version.config
    return {
        "instructions": config.get("instructions", ""),
        "endpoint": config.get("endpoint_id"),
        "output_type": config.get("output_type"),
        "categories": list(config.get("categories") or []),
        "min_value": config.get("min_value"),
        "max_value": config.get("max_value"),
    }


def acting_judge(version: JudgeVersion, judge: Judge, endpoint: ModelEndpoint | None = None) -> Judge:
    """An unsaved copy of `judge` that says what `version` says: its instructions, model and output settings and
    its number — and no spend cap (a shadow's calls never eat the live version's daily cap)."""
    copy = Judge(**{f.attname: getattr(judge, f.attname) for f in Judge._meta.concrete_fields})
    copy._state.adding = False
    settings = version_settings(version)
    copy.instructions = settings["instructions"]
    copy.output_type = settings["output_type"] or judge.output_type
    copy.categories = settings["categories"]
    copy.min_value, copy.max_value = settings["min_value"], settings["max_value"]
    if endpoint is None:
        endpoint = judge.endpoint if settings["endpoint"] == judge.endpoint_id else ModelEndpoint.objects.get(pk=settings["endpoint"])
    copy.endpoint = endpoint
    if "experiment" in judge._state.fields_cache:
        copy.experiment = judge.experiment
    copy.version = version.version
    copy.daily_cost_cap_usd = None
    copy.paused_reason = ""
    return copy
