"""Judge instructions: `{{ variable }}` placeholders, their validation, and resolving them to data. Pure Python.

Variables never get pasted into the instructions themselves: `render` replaces each with a reference like
⟦INPUTS⟧ and returns the data separately, so prompting.py can put it in delimited data blocks where text inside
a trace cannot pose as instructions.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

TRACE = "trace"
SESSION = "session"


@dataclass(frozen=True)
class Variable:
    name: str
    scopes: frozenset[str]
    description: str


VARIABLES: dict[str, Variable] = {
    variable.name: variable
    for variable in [
        Variable("inputs", frozenset({TRACE, SESSION}), "the request (for a session: its first turn's request)"),
        Variable("outputs", frozenset({TRACE, SESSION}), "the response (for a session: its last turn's response)"),
        Variable("trace", frozenset({TRACE}), "every span, compactly: type, name, timing, inputs and outputs"),
        Variable("metadata", frozenset({TRACE, SESSION}), "the trace's metadata and tags (a session: its first trace's)"),
        Variable("conversation", frozenset({SESSION}), "every turn of the conversation, user and assistant"),
        Variable("retrieved_context", frozenset({TRACE, SESSION}), "documents returned by RETRIEVER spans"),
        Variable("tool_calls", frozenset({TRACE, SESSION}), "TOOL spans in order: name, arguments, result"),
        Variable(
            "expectations",
            frozenset({TRACE}),
            "what an evaluation run's record expects (expected_response, expected_facts, guidelines, any key); "
            "a trace without them is not applicable",
        ),
    ]
}
# Only built-in judges use this: it is filled from the judge's own guidelines text.
GUIDELINES = "guidelines"

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    path: str  # "inputs.question"
    start: int  # offset of "{{" in the template

    @property
    def root(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def label(self) -> str:
        return self.path.upper()


def _position(template: str, offset: int) -> str:
    line = template.count("\n", 0, offset) + 1
    column = offset - (template.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def references(template: str) -> list[Reference]:
    """Every placeholder, in order. Raises TemplateError for malformed syntax."""
    found: list[Reference] = []
    cursor = 0
    for match in PLACEHOLDER.finditer(template):
        stray_close = template.find("}}", cursor, match.start())
        if stray_close != -1:
            raise TemplateError(f"'}}}}' at {_position(template, stray_close)} has no opening '{{{{'")
        inner = match.group(1).strip()
        if "{{" in match.group(1):
            raise TemplateError(f"'{{{{' at {_position(template, match.start())} is never closed with '}}}}'")
        if not inner:
            raise TemplateError(f"empty placeholder '{{{{ }}}}' at {_position(template, match.start())}")
        if not PATH.match(inner):
            raise TemplateError(
                f"'{{{{ {inner} }}}}' at {_position(template, match.start())} is not a variable name; "
                "use names like {{ inputs }} or {{ inputs.question }}"
            )
        found.append(Reference(inner, match.start()))
        cursor = match.end()
    unclosed = template.find("{{", cursor)
    if unclosed != -1:
        raise TemplateError(f"'{{{{' at {_position(template, unclosed)} is never closed with '}}}}'")
    stray_close = template.find("}}", cursor)
    if stray_close != -1:
        raise TemplateError(f"'}}}}' at {_position(template, stray_close)} has no opening '{{{{'")
    return found


def allowed_variables(scope: str) -> list[str]:
    return [name for name, variable in VARIABLES.items() if scope in variable.scopes]


def validate_instructions(template: str, scope: str, *, builtin: bool = False) -> list[Reference]:
    """Check custom-judge instructions for `scope`; returns the references. Raises TemplateError with a message
    a person can act on."""
    if not template.strip():
        raise TemplateError("instructions are empty; describe what the judge should check")
    found = references(template)
    allowed = allowed_variables(scope)
    for reference in found:
        root = reference.root
        if builtin and root == GUIDELINES:
            continue
        if root not in VARIABLES:
            close = difflib.get_close_matches(root, list(VARIABLES), n=1)
            hint = f"; did you mean {{{{ {close[0]} }}}}?" if close else ""
            raise TemplateError(
                f"unknown variable {{{{ {reference.path} }}}} at {_position(template, reference.start)}{hint} "
                f"Available for {scope} judges: {', '.join('{{ ' + name + ' }}' for name in allowed)}"
            )
        if root not in allowed:
            if root == "conversation":
                raise TemplateError(
                    "{{ conversation }} is only available to session judges; this judge looks at single traces. "
                    "Use {{ inputs }} and {{ outputs }}, or set the scope to Sessions."
                )
            raise TemplateError(
                f"{{{{ {root} }}}} is not available to {scope} judges; use "
                + ", ".join("{{ " + name + " }}" for name in allowed)
            )
    if not found:
        example = "{{ conversation }}" if scope == SESSION else "{{ inputs }} and {{ outputs }}"
        raise TemplateError(
            f"instructions use no variable, so the judge would never see the {scope}; insert e.g. {example}"
        )
    return found


MISSING = object()


def resolve(values: dict[str, Any], path: str) -> Any:
    """Follow a dotted path through dicts (keys) and lists (indices). MISSING if any step is absent."""
    parts = path.split(".")
    current: Any = values.get(parts[0], MISSING)
    for part in parts[1:]:
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                return MISSING
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isascii() and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def render(template: str, values: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]]:
    """(task text with ⟦LABEL⟧ references, [(label, value), ...] in first-use order). Values may be MISSING."""
    found = references(template)
    blocks: dict[str, Any] = {}
    for reference in found:
        if reference.label not in blocks:
            blocks[reference.label] = resolve(values, reference.path)
    task = PLACEHOLDER.sub(lambda match: f"⟦{match.group(1).strip().upper()}⟧", template)
    return task, list(blocks.items())
