"""Quality gates as people write them: `correctness>=0.9`, `relevance.pass_rate >= 90%`, `politeness.mean<=4.5`, or
the JSON object `{"judge": ..., "metric": ..., "operator": ..., "threshold": ...}`. Pure Python: the client's CLI
and the server read them with the same rules (the client has its own copy of `parse_gate_text`, as it must not
import the server).

A gate names one of the run's judges; its metric defaults to what the judge gives (pass rate for yes/no judges,
mean for numeric ones) and must suit it; a pass rate is a share from 0 to 1 (`90%` is 0.9)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

METRICS = ("pass_rate", "mean")
OPERATORS = (">=", "<=")
GATE_TEXT = re.compile(r"^\s*(?P<left>.+?)\s*(?P<operator>>=|<=)\s*(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<percent>%?)\s*$")
GATE_KEYS = ("judge", "metric", "operator", "threshold")


class GateError(ValueError):
    pass


@dataclass(frozen=True)
class GateIn:
    judge_name: str
    metric: str | None  # None: the judge's own (decided once the judge is known)
    operator: str
    threshold: float


def parse_gate_text(text: str) -> GateIn:
    """`<judge>[.pass_rate|.mean] (>=|<=) <number>[%]`. Raises GateError saying how to write it."""
    match = GATE_TEXT.match(text)
    if not match:
        raise GateError(f"{text!r} is not a gate; write it like 'correctness>=0.9', 'relevance.pass_rate>=90%' or 'score.mean<=4'")
    left = match.group("left")
    metric = None
    for candidate in METRICS:
        if left.endswith("." + candidate):
            left, metric = left[: -len(candidate) - 1].strip(), candidate
    threshold = float(match.group("threshold"))
    if match.group("percent"):
        threshold /= 100
    if not left:
        raise GateError(f"{text!r} names no judge")
    return GateIn(left, metric, match.group("operator"), threshold)


def parse_gate(value: Any) -> GateIn:
    """A gate as text or as a JSON object. Raises GateError."""
    if isinstance(value, str):
        return parse_gate_text(value)
    if not isinstance(value, dict):
        raise GateError('a gate is text like "correctness>=0.9" or an object {"judge", "metric", "operator", "threshold"}')
    unknown = sorted(set(value) - set(GATE_KEYS))
    if unknown:
        raise GateError(f"{', '.join(map(repr, unknown))} is not a gate field; use {', '.join(GATE_KEYS)}")
    judge = value.get("judge")
    if not isinstance(judge, str) or not judge.strip():
        raise GateError("'judge' must be the name of one of the run's judges")
    metric = value.get("metric")
    if metric is not None and metric not in METRICS:
        raise GateError(f"'metric' must be {' or '.join(METRICS)} (got {metric!r})")
    operator = value.get("operator", ">=")
    if operator not in OPERATORS:
        raise GateError(f"'operator' must be '>=' or '<=' (got {operator!r})")
    threshold = value.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise GateError("'threshold' must be a number")
    return GateIn(judge.strip(), metric, operator, float(threshold))


def metric_for(output_type: str) -> str | None:
    """The metric a judge of this output type is gated on; None when there is none (categories, text)."""
    if output_type == "boolean":
        return "pass_rate"
    if output_type in ("integer", "float"):
        return "mean"
    return None


def check_gate(gate: GateIn, output_type: str) -> GateIn:
    """The gate with its metric settled for a judge of `output_type`; GateError when it can't apply."""
    fitting = metric_for(output_type)
    if fitting is None:
        raise GateError(f"{gate.judge_name} answers with {output_type} values; gates apply to yes/no judges (pass rate) and numeric ones (mean)")
    metric = gate.metric or fitting
    if metric != fitting:
        raise GateError(f"{gate.judge_name} is a {output_type} judge: gate its {fitting.replace('_', ' ')}, not its {metric.replace('_', ' ')}")
    if not math.isfinite(gate.threshold):
        raise GateError("the threshold must be a finite number")
    if metric == "pass_rate" and not 0 <= gate.threshold <= 1:
        raise GateError(f"a pass rate is a share from 0 to 1 (or 0% to 100%); got {gate.threshold:g}")
    return GateIn(gate.judge_name, metric, gate.operator, gate.threshold)


def passes(value: float | None, operator: str, threshold: float) -> bool:
    """Whether a metric's value meets the gate; no value (nothing judged) never passes."""
    if value is None:
        return False
    return value >= threshold if operator == ">=" else value <= threshold
