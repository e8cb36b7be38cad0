"""The trace filter language (MLflow's trace search syntax, plus OR, NOT and parentheses). Pure Python.

    trace.status = 'OK' AND metadata.environment = 'production'
    (tags.team != 'infra' OR trace.execution_time_ms > 1500) AND NOT span.type = 'TOOL'
    metadata.`mlflow.trace.session` IS NOT NULL

One parser; two back ends that must agree (a property test checks it): traces.filter_memory for decisions made
in memory, and traces.filter_sql for database queries. Every comparison is two-valued: a missing value (no such
metadata key, no duration yet) makes a comparison false, and only IS NULL is true for it.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN")
VERDICT_OPS = NUMBER_OPS  # a verdict is yes/no, a number or a text (traces.verdicts)
NULL_OPS = ("IS NULL", "IS NOT NULL")
TRACE_STATUSES = ("OK", "ERROR", "IN_PROGRESS")
MAX_TIMESTAMP_MS = 253_402_300_799_999
MAX_NUMBER = 1e15
MAX_DIGITS = 30  # before any exponent: past MAX_NUMBER anyway, and Python won't read an int past 4,300 digits


@dataclass(frozen=True)
class FilterLimits:
    """How much work one filter may cause. A judge's filter runs on every trace ingested, so these bound the cost
    of ingesting for everyone. The settings EVALAPP_FILTER_* set them (traces.apps installs them at start-up)."""

    max_length: int = 4000  # characters in the whole filter
    max_conditions: int = 100  # comparisons; each value of an IN list counts as one
    max_depth: int = 20  # parentheses and NOTs nested in one another
    max_like_length: int = 200  # characters in one LIKE/ILIKE pattern
    max_like_wildcards: int = 20  # % and _ in one pattern


LIMITS = FilterLimits()
# The most the settings may raise them to. Evaluation recurses once per level of nesting, so depth stays far from
# Python's recursion limit; SQLite refuses an expression nested more than 1,000 deep, and n ORs nest n deep there.
HIGHEST_LIMITS = FilterLimits(max_length=100_000, max_conditions=500, max_depth=50, max_like_length=10_000, max_like_wildcards=1_000)


@dataclass(frozen=True)
class FieldInfo:
    kind: str  # "string" | "number"
    column: str  # a name the back ends understand
    nullable: bool = True


# trace.* (MLflow also spells these attributes.*)
TRACE_FIELDS: dict[str, FieldInfo] = {
    "status": FieldInfo("string", "status", nullable=False),
    "name": FieldInfo("string", "name"),
    "execution_time_ms": FieldInfo("number", "duration_ms"),
    "timestamp_ms": FieldInfo("number", "timestamp_ms", nullable=False),
    "session_id": FieldInfo("string", "session_id"),
    "user_id": FieldInfo("string", "user_id"),
}
SPAN_FIELDS: dict[str, FieldInfo] = {
    "type": FieldInfo("string", "span_type", nullable=False),
    "name": FieldInfo("string", "name"),
}
# Metadata keys that MLflow clients use for what we keep in columns.
METADATA_ALIASES = {"mlflow.trace.session": "session_id", "mlflow.trace.user": "user_id"}
ALL_FIELD_NAMES = (
    [f"trace.{name}" for name in TRACE_FIELDS] + [f"span.{name}" for name in SPAN_FIELDS] + ["metadata.<key>", "tags.<key>", "assessment.<judge>"]
)


class FilterError(ValueError):
    def __init__(self, message: str, position: int):
        self.position = position  # 0-based offset into the filter string
        super().__init__(f"{message} (at column {position + 1})")


# --- AST ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """What a comparison looks at. `source` is trace | span | metadata | tags | assessment."""

    source: str
    name: str
    info: FieldInfo

    def __str__(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: Any = None  # str | int | float | tuple for IN


@dataclass(frozen=True)
class And:
    operands: tuple  # two or more; `a AND b AND c` is one And, so a long chain is one level, not a deep tree


@dataclass(frozen=True)
class Or:
    operands: tuple  # two or more, as And


@dataclass(frozen=True)
class Not:
    operand: Any


# --- tokenizer ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)(?:\.(?:[A-Za-z0-9_\-]+|`[^`]*`))*)
    """,
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"}


@dataclass
class Token:
    kind: str
    text: str
    position: int
    value: Any = None


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            if char in "'\"":
                raise FilterError(f"unterminated string starting with {char}", position)
            raise FilterError(f"unexpected character {char!r}", position)
        kind = match.lastgroup or ""
        chunk = match.group(0)
        if kind == "string":
            tokens.append(Token("string", chunk, position, _unquote(chunk)))
        elif kind == "number":
            if len(re.match(r"-?0*(\d*)", chunk).group(1)) > MAX_DIGITS:
                raise FilterError(f"{chunk[:12]}… is out of range (at most {MAX_NUMBER:.0e} either way)", position)
            number = float(chunk)
            tokens.append(Token("number", chunk, position, int(chunk) if re.fullmatch(r"-?\d+", chunk) else number))
        elif kind == "ident":
            upper = chunk.upper()
            if upper in KEYWORDS:
                tokens.append(Token("keyword", upper, position))
            else:
                tokens.append(Token("ident", chunk, position))
        elif kind == "op":
            tokens.append(Token("op", "!=" if chunk == "<>" else chunk, position))
        elif kind != "space":
            tokens.append(Token(kind, chunk, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- parser ---------------------------------------------------------------------------------------------


def _split_identifier(text: str) -> list[str]:
    parts = re.findall(r"`([^`]*)`|([^.`]+)", text)
    return [quoted or plain for quoted, plain in parts]


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, [n for n in ALL_FIELD_NAMES if "<" not in n], n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return "; fields are " + ", ".join(ALL_FIELD_NAMES)


def _field(token: Token) -> Field:
    parts = _split_identifier(token.text)
    prefix = parts[0].lower()
    if prefix in ("metadata", "tags", "tag", "request_metadata") and len(parts) >= 2:
        key = ".".join(parts[1:])
        if not key:
            raise FilterError(f"'{token.text}' needs a key after '{parts[0]}.'", token.position)
        if '"' in key or "\\" in key:
            raise FilterError(f"'{token.text}': keys with double quotes or backslashes can't be filtered on", token.position)
        source = "tags" if prefix in ("tags", "tag") else "metadata"
        if source == "metadata" and key in METADATA_ALIASES:
            column = METADATA_ALIASES[key]
            return Field("trace", column, TRACE_FIELDS[column])
        return Field(source, key, FieldInfo("string", key))
    if prefix in ("assessment", "assessments") and len(parts) >= 2:
        name = ".".join(parts[1:])
        return Field("assessment", name, FieldInfo("verdict", name))
    if prefix in ("trace", "attributes", "attribute") and len(parts) == 2:
        name = parts[1].lower()
        if name in TRACE_FIELDS:
            return Field("trace", name, TRACE_FIELDS[name])
    if prefix == "span" and len(parts) == 2:
        name = parts[1].lower()
        if name in SPAN_FIELDS:
            return Field("span", name, SPAN_FIELDS[name])
    if len(parts) == 1 and parts[0].lower() in TRACE_FIELDS:
        raise FilterError(f"unknown field '{token.text}'; did you mean 'trace.{parts[0].lower()}'?", token.position)
    raise FilterError(f"unknown field '{token.text}'{_suggest(token.text)}", token.position)


class _Parser:
    def __init__(self, text: str, limits: FilterLimits):
        if len(text) > limits.max_length:
            raise FilterError(f"the filter is {len(text):,} characters long; the limit is {limits.max_length:,}", limits.max_length)
        self.text = text
        self.limits = limits
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0  # parentheses and NOTs open around the current token
        self.conditions = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        if self.current.kind == "keyword" and self.current.text == word:
            self.index += 1
            return True
        return False

    def parse(self):
        if self.current.kind == "end":
            raise FilterError("the filter is empty", 0)
        node = self.parse_or()
        if self.current.kind != "end":
            token = self.current
            hint = "; join conditions with AND or OR" if token.kind in ("ident", "lparen") else ""
            raise FilterError(f"unexpected '{token.text}'{hint}", token.position)
        return node

    def parse_or(self):
        operands = [self.parse_and()]
        while self.keyword("OR"):
            operands.append(self.parse_and())
        return _joined(Or, operands)

    def parse_and(self):
        operands = [self.parse_not()]
        while self.keyword("AND"):
            operands.append(self.parse_not())
        return _joined(And, operands)

    def parse_not(self):
        token = self.current
        if self.keyword("NOT"):
            self.enter(token)
            node = Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_primary()

    def enter(self, token: Token) -> None:
        """One level deeper (a parenthesis or NOT); refused past the limit before the parser recurses further."""
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise FilterError(
                f"parentheses and NOT are nested more than {self.limits.max_depth} deep; the limit is {self.limits.max_depth}",
                token.position,
            )

    def parse_primary(self):
        token = self.current
        if token.kind == "lparen":
            self.enter(token)
            self.advance()
            node = self.parse_or()
            if self.current.kind != "rparen":
                raise FilterError("missing ')'", self.current.position)
            self.advance()
            self.depth -= 1
            return node
        if token.kind != "ident":
            what = "the end of the filter" if token.kind == "end" else f"'{token.text}'"
            raise FilterError(f"expected a field such as trace.status or metadata.environment, found {what}", token.position)
        self.advance()
        return self.parse_comparison(_field(token), token)

    def parse_comparison(self, field: Field, field_token: Token) -> Comparison:
        op_token = self.current
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise FilterError("expected NULL after IS" + (" NOT" if negated else ""), self.current.position)
            return Comparison(field, "IS NOT NULL" if negated else "IS NULL")
        if self.keyword("NOT"):
            if not self.keyword("IN"):
                raise FilterError("expected IN after NOT (or put NOT before the field)", self.current.position)
            op = "NOT IN"
        elif self.keyword("IN"):
            op = "IN"
        elif self.keyword("LIKE"):
            op = "LIKE"
        elif self.keyword("ILIKE"):
            op = "ILIKE"
        elif op_token.kind == "op":
            self.advance()
            op = op_token.text
        else:
            what = "the end of the filter" if op_token.kind == "end" else f"'{op_token.text}'"
            raise FilterError(
                f"expected an operator after {field} (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL), found {what}",
                op_token.position,
            )
        allowed = {"string": STRING_OPS, "verdict": VERDICT_OPS}.get(field.info.kind, NUMBER_OPS)
        if op not in allowed:
            raise FilterError(
                f"{op} can't be used with {field}, which is {_kind_words(field)}; "
                f"use {', '.join(allowed)}",
                op_token.position,
            )
        if op in ("IN", "NOT IN"):
            value = self.parse_list(field)
        else:
            value = self.parse_value(field, pattern=op in ("LIKE", "ILIKE"))
        self.count_conditions(len(value) if op in ("IN", "NOT IN") else 1, field_token)
        return Comparison(field, op, value)

    def count_conditions(self, count: int, token: Token) -> None:
        self.conditions += count
        if self.conditions > self.limits.max_conditions:
            raise FilterError(
                f"the filter has more than {self.limits.max_conditions} conditions (each value of an IN list counts as "
                f"one); the limit is {self.limits.max_conditions}",
                token.position,
            )

    def parse_list(self, field: Field) -> tuple:
        if self.current.kind != "lparen":
            raise FilterError("expected '(' and a list of values after IN, e.g. IN ('OK', 'ERROR')", self.current.position)
        self.advance()
        values = [self.parse_value(field)]
        while self.current.kind == "comma":
            self.advance()
            values.append(self.parse_value(field))
        if self.current.kind != "rparen":
            raise FilterError("expected ',' or ')' in the list of values", self.current.position)
        self.advance()
        return tuple(values)

    def parse_value(self, field: Field, *, pattern: bool = False):
        token = self.current
        if field.info.kind == "verdict":
            return self.parse_verdict(field, token)
        if field.info.kind == "string":
            if token.kind == "number":
                raise FilterError(f"{field} is text; quote the value: '{token.text}'", token.position)
            if token.kind != "string":
                raise FilterError(f"expected a quoted value such as 'production', found '{token.text or 'the end'}'", token.position)
            self.advance()
            if str(field) == "trace.status" and not pattern and token.value not in TRACE_STATUSES:
                close = difflib.get_close_matches(token.value.upper(), TRACE_STATUSES, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise FilterError(f"'{token.value}' is not a trace status (OK, ERROR, IN_PROGRESS){hint}", token.position)
            if pattern:
                self.check_pattern(token)
            if str(field) == "span.type" and not pattern:
                return token.value.upper()
            return token.value
        if token.kind != "number":
            raise FilterError(f"{field} is a number; expected a number such as 1500, found '{token.text or 'the end'}'", token.position)
        self.advance()
        if field.name == "timestamp_ms":
            if not isinstance(token.value, int):
                raise FilterError("trace.timestamp_ms takes whole milliseconds since 1970", token.position)
            if not 0 <= token.value <= MAX_TIMESTAMP_MS:
                raise FilterError("trace.timestamp_ms must be between 0 and 253402300799999 (the year 9999)", token.position)
        if not math.isfinite(token.value) or abs(token.value) > MAX_NUMBER:
            raise FilterError(f"{token.text} is out of range (at most {MAX_NUMBER:.0e} either way)", token.position)
        return token.value

    def parse_verdict(self, field: Field, token: Token):
        """A verdict is compared with a quoted text ('no', 'rude') or a number (3, 0.5)."""
        if token.kind not in ("string", "number"):
            raise FilterError(f"expected a value for {field} such as 'yes', 'no', 'rude' or 3, found '{token.text or 'the end'}'", token.position)
        self.advance()
        if token.kind == "number" and (not math.isfinite(token.value) or abs(token.value) > MAX_NUMBER):
            raise FilterError(f"{token.text} is out of range (at most {MAX_NUMBER:.0e} either way)", token.position)
        return token.value

    def check_pattern(self, token: Token) -> None:
        length = len(token.value)
        if length > self.limits.max_like_length:
            raise FilterError(
                f"the LIKE pattern is {length} characters long; the limit is {self.limits.max_like_length}", token.position
            )
        wildcards = sum(1 for char in token.value if char in "%_")
        if wildcards > self.limits.max_like_wildcards:
            raise FilterError(
                f"the LIKE pattern has {wildcards} wildcards (% and _); the limit is {self.limits.max_like_wildcards}",
                token.position,
            )


def _kind_words(field: Field) -> str:
    return {"string": "text", "verdict": "a verdict"}.get(field.info.kind, "a number")


def _joined(kind: type[And] | type[Or], operands: list):
    """One n-ary node for a chain of ANDs (or ORs), taking in chains of the same kind from parentheses."""
    if len(operands) == 1:
        return operands[0]
    flat: list = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else [operand])
    return kind(tuple(flat))


def parse(text: str, limits: FilterLimits | None = None):
    """The filter's syntax tree; FilterError (with the 0-based `position`) if it is not valid or is past `limits`
    (by default LIMITS)."""
    return _Parser(text, limits or LIMITS).parse()


def validate(text: str) -> str | None:
    """None if valid, else a message for a person: what is wrong, where, and what to write instead."""
    try:
        parse(text)
    except FilterError as error:
        return str(error)
    return None


# --- shared by the back ends ----------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # trace.timestamp_ms counts from here
