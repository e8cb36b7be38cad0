"""What a dataset record is, before it is stored: validation of records sent as JSON (the API, JSONL uploads, the
client), the key that makes merging idempotent, and the text a search looks in. Pure Python.

A record is `{"inputs": {...}, "expectations": {...}, "outputs": ..., "tags": {...}}` — MLflow's evaluation
dataset shape. Every problem is reported with its path (`records[3].expectations.expected_facts[1]`), and a batch
with any problem is refused as a whole."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from traces.like import fold_case
from traces.payload import PayloadError
from traces.strict_json import unstorable_text

RECORD_KEYS = ("inputs", "expectations", "outputs", "tags")
MAX_ERRORS = 50
# One record (inputs, expectations, outputs and tags as compact JSON): large enough for a long conversation and a
# retrieved context, small enough that a page of records stays a page.
MAX_RECORD_BYTES = 1024 * 1024
MAX_TAG_LENGTH = 1000
# Records per merge, upload or "add traces" (a larger set goes in several merges).
MAX_RECORDS_PER_MERGE = 10_000


class Unset:
    """A field the sender left out (as opposed to one sent as null)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = Unset()


@dataclass
class RecordIn:
    """A validated record. `expectations` and `tags` are {} when not given; `outputs` is UNSET when not given."""

    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = UNSET
    tags: dict[str, str] = field(default_factory=dict)
    source_trace_id: str = ""

    @property
    def key(self) -> str:
        return record_key(self.inputs)


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: keys sorted, no spaces, text as is. `1` and `1.0` stay different values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_key(inputs: dict[str, Any]) -> str:
    """The record's identity in its dataset: the SHA-256 of its inputs' canonical JSON. Merging a record whose
    inputs have this key updates the stored one instead of adding another."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def content_hash(inputs: Any, expectations: Any, outputs: Any) -> str:
    """The SHA-256 of what an evaluation run reads from a record; a run that stored it can tell whether the record
    still says what it evaluated."""
    return hashlib.sha256(canonical_json([inputs, expectations, outputs]).encode()).hexdigest()


def search_text(inputs: Any, expectations: Any) -> str:
    """The words a search finds a record by: every text, number and key in its inputs and expectations, case-folded
    the way the filter language's ILIKE folds (traces.like.fold_case), one per line."""
    pieces: list[str] = []
    stack: list[Any] = [inputs, expectations]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                pieces.append(str(key))
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            pieces.append(item)
        elif item is not None and not isinstance(item, bool):
            pieces.append(str(item))
    return fold_case("\n".join(pieces))


class Errors:
    """Problems found so far, each with its path; at most MAX_ERRORS are kept."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append((path, message))

    def raise_any(self) -> None:
        if self.items:
            raise PayloadError(self.items)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_inputs(errors: Errors, path: str, value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        errors.add(path, 'must be a JSON object of the inputs your application takes, e.g. {"question": "..."}')
        return None
    if not value:
        errors.add(path, "must not be empty: a record is known by its inputs")
        return None
    return value


def check_expectations(errors: Errors, path: str, value: Any) -> dict[str, Any] | None:
    """A JSON object. The keys the built-in judges read must have their shape: `expected_facts` a list of texts,
    `guidelines` a text or a list of texts; `expected_response` and any other key may be any JSON."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(path, 'must be a JSON object, e.g. {"expected_response": "...", "expected_facts": ["..."]}')
        return None
    ok = True
    facts = value.get("expected_facts")
    if "expected_facts" in value and not (isinstance(facts, list) and all(isinstance(fact, str) and fact.strip() for fact in facts)):
        errors.add(_join(path, "expected_facts"), 'must be a list of non-empty texts, e.g. ["30-day window", "original packaging"]')
        ok = False
    rules = value.get("guidelines")
    if "guidelines" in value and not (isinstance(rules, str) or (isinstance(rules, list) and all(isinstance(rule, str) for rule in rules))):
        errors.add(_join(path, "guidelines"), "must be a text or a list of texts")
        ok = False
    return value if ok else None


def check_tags(errors: Errors, path: str, value: Any) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(path, 'must be a JSON object of texts, e.g. {"topic": "returns"}')
        return None
    ok = True
    for key, tag in value.items():
        if not isinstance(tag, str):
            errors.add(_join(path, key), f"must be a text (tags are text; send {json.dumps(str(tag))})")
            ok = False
        elif len(tag) > MAX_TAG_LENGTH or len(key) > 200:
            errors.add(_join(path, key), f"is too long (a tag's name is up to 200 characters, its value up to {MAX_TAG_LENGTH})")
            ok = False
    return value if ok else None


def check_storable(errors: Errors, path: str, record: RecordIn) -> bool:
    """Text every database stores, and a size one record may have."""
    problem = unstorable_text(
        {"inputs": record.inputs, "expectations": record.expectations, "outputs": record.outputs, "tags": record.tags}
    )
    if problem is not None:
        where, what = problem
        errors.add(_join(path, where), what)
        return False
    outputs = None if record.outputs is UNSET else record.outputs
    size = len(canonical_json([record.inputs, record.expectations, outputs, record.tags]).encode())
    if size > MAX_RECORD_BYTES:
        errors.add(path, f"is {size:,} bytes as JSON; a record may be up to {MAX_RECORD_BYTES:,}")
        return False
    return True


def parse_record(errors: Errors, path: str, item: Any) -> RecordIn | None:
    """One record from its JSON; None (and the problems in `errors`) if it is not one."""
    if not isinstance(item, dict):
        errors.add(path, 'must be a JSON object such as {"inputs": {...}, "expectations": {...}}')
        return None
    unknown = [key for key in item if key not in RECORD_KEYS]
    for key in unknown:
        errors.add(_join(path, str(key)), f"is not a record field; use {', '.join(RECORD_KEYS)}")
    if "inputs" not in item:
        errors.add(_join(path, "inputs"), 'is required: a JSON object of the inputs, e.g. {"question": "..."}')
        return None
    inputs = check_inputs(errors, _join(path, "inputs"), item["inputs"])
    expectations = check_expectations(errors, _join(path, "expectations"), item.get("expectations"))
    tags = check_tags(errors, _join(path, "tags"), item.get("tags"))
    if unknown or inputs is None or expectations is None or tags is None:
        return None
    record = RecordIn(inputs=inputs, expectations=expectations, outputs=item.get("outputs", UNSET), tags=tags)
    return record if check_storable(errors, path, record) else None


def parse_records(data: Any, *, path: str = "records") -> list[RecordIn]:
    """A list of records (or `{"records": [...]}`); PayloadError naming every problem if any record is wrong."""
    if isinstance(data, dict) and set(data) == {"records"}:
        data = data["records"]
    if not isinstance(data, list):
        raise PayloadError([("", 'send a list of records, or {"records": [...]}, each {"inputs": {...}, "expectations": {...}}')])
    if not data:
        raise PayloadError([(path, "is empty; send at least one record")])
    if len(data) > MAX_RECORDS_PER_MERGE:
        raise PayloadError([(path, f"holds {len(data):,} records; send at most {MAX_RECORDS_PER_MERGE:,} at a time")])
    errors = Errors()
    records = [parse_record(errors, f"{path}[{index}]", item) for index, item in enumerate(data)]
    errors.raise_any()
    return [record for record in records if record is not None]
