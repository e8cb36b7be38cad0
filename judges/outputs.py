"""Output types: how the answer is asked for (prompt line + JSON schema) and how it is parsed. Pure Python.

An answer outside the type is an `InvalidAnswer`, never coerced: 3.7 is not an integer, "maybe" is not yes/no.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any


class InvalidAnswer(ValueError):
    pass


@dataclass(frozen=True)
class OutputSpec:
    output_type: str  # boolean | categorical | integer | float | string
    categories: tuple[str, ...] = field(default=())
    min_value: float | None = None
    max_value: float | None = None

    def range_text(self) -> str:
        if self.min_value is None and self.max_value is None:
            return ""
        fmt = (lambda v: str(int(v))) if self.output_type == "integer" else (lambda v: repr(float(v)))
        if self.min_value is not None and self.max_value is not None:
            return f" from {fmt(self.min_value)} to {fmt(self.max_value)}"
        if self.min_value is not None:
            return f" of at least {fmt(self.min_value)}"
        return f" of at most {fmt(self.max_value)}"

    def answer_type_line(self) -> str:
        if self.output_type == "boolean":
            return 'Answer type: boolean (answer "yes" or "no")'
        if self.output_type == "categorical":
            return "Answer type: categorical; allowed values: " + ", ".join(json.dumps(c) for c in self.categories)
        if self.output_type in ("integer", "float"):
            return f"Answer type: {self.output_type}{self.range_text()}"
        return "Answer type: string"

    def result_schema(self) -> dict[str, Any]:
        if self.output_type == "boolean":
            return {"type": "string", "enum": ["yes", "no"]}
        if self.output_type == "categorical":
            return {"type": "string", "enum": list(self.categories)}
        if self.output_type in ("integer", "float"):
            # Bounds are stated in the prompt and checked on parse: not every provider accepts them in a schema.
            return {"type": "integer" if self.output_type == "integer" else "number"}
        return {"type": "string"}

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "rationale": {"type": "string", "description": "one or two sentences explaining the verdict"},
                "result": self.result_schema(),
            },
            "required": ["rationale", "result"],
            "additionalProperties": False,
        }

    def parse_value(self, raw: Any) -> Any:
        """The typed value of `raw`, or InvalidAnswer saying what was wrong."""
        if self.output_type == "boolean":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in ("yes", "no"):
                return raw.strip().lower() == "yes"
            raise InvalidAnswer(f'expected "yes" or "no", got {json.dumps(raw)}')
        if self.output_type == "categorical":
            if isinstance(raw, str):
                for category in self.categories:
                    if raw.strip().lower() == category.lower():
                        return category
            raise InvalidAnswer(
                f"expected one of {', '.join(json.dumps(c) for c in self.categories)}, got {json.dumps(raw)}"
            )
        if self.output_type in ("integer", "float"):
            value = self._number(raw)
            if self.min_value is not None and value < self.min_value or self.max_value is not None and value > self.max_value:
                raise InvalidAnswer(f"{value} is outside the allowed range{self.range_text()}")
            return value
        if isinstance(raw, str) and raw.strip():
            return raw.strip()
        raise InvalidAnswer(f"expected a non-empty string, got {json.dumps(raw)}")

    def _number(self, raw: Any) -> int | float:
        value: Any = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw.strip())
            except ValueError:
                raise InvalidAnswer(f"expected {'an integer' if self.output_type == 'integer' else 'a number'}, got {json.dumps(raw)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            raise InvalidAnswer(f"expected {'an integer' if self.output_type == 'integer' else 'a number'}, got {json.dumps(raw)}")
        if abs(value) > 1e15:  # beyond what any scale a judge is given means; also keeps float() from overflowing
            raise InvalidAnswer(f"{str(value)[:30]}… is not a plausible {self.output_type} answer")
        if self.output_type == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise InvalidAnswer(f"expected an integer, got {value}")
            return int(value)
        return float(value)


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_RESULT_LINE = re.compile(r"^\s*\**\s*(result|verdict|answer)\s*\**\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_RATIONALE_LINE = re.compile(r"^\s*\**\s*(rationale|reason|reasoning)\s*\**\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def extract_answer(content: str) -> tuple[Any, str]:
    """(raw result, rationale) from a model's reply: a JSON object, a JSON object inside prose or a code fence,
    or 'Result: ...' / 'Rationale: ...' lines. InvalidAnswer if none of those is there."""
    text = (content or "").strip()
    if not text:
        raise InvalidAnswer("the model returned an empty answer")
    candidates = [text]
    fenced = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    candidates.extend(fenced)
    greedy = _JSON_OBJECT.search(text)
    if greedy:
        candidates.append(greedy.group(0))
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and "result" in data:
            rationale = data.get("rationale", "")
            return data["result"], rationale if isinstance(rationale, str) else json.dumps(rationale)
    result_line = _RESULT_LINE.search(text)
    if result_line:
        rationale_line = _RATIONALE_LINE.search(text)
        raw = result_line.group(2).strip().strip('"').strip("*").strip()
        return raw, rationale_line.group(2).strip() if rationale_line else ""
    snippet = text if len(text) <= 200 else text[:200] + "…"
    raise InvalidAnswer(f"the model's answer has no result in the requested format: {snippet!r}")
