"""Records from an uploaded file: CSV or JSON Lines. Pure Python.

CSV — the first row names the columns (README: "Datasets"):
- `inputs.<key>`, `expectations.<key>`, `tags.<key>`, `outputs.<key>`: the cell's text under that key; an empty
  cell leaves the key out. `expectations.expected_facts` holds one fact per line of the cell, or a JSON list.
- `inputs`, `expectations`, `tags`: a JSON object in the cell (for numbers, lists, nesting). A file uses either the
  JSON column or the dotted columns of one part, not both.
- `outputs`: the cell's text as the record's outputs (use `outputs.<key>` columns or JSONL for JSON outputs).
Rows are numbered as a spreadsheet numbers them: the header is row 1, the first record row 2.

JSON Lines — one record per line, as the API takes it: `{"inputs": {...}, "expectations": {...}, "outputs": ...,
"tags": {...}}`; blank lines are skipped; lines are numbered from 1.

Any problem refuses the whole file, with every problem's row (or line) and column."""

from __future__ import annotations

import csv
import io
from typing import Any

from datasets.records import (
    MAX_RECORDS_PER_MERGE,
    UNSET,
    Errors,
    RecordIn,
    check_expectations,
    check_inputs,
    check_storable,
    check_tags,
    parse_record,
)
from traces import strict_json
from traces.payload import PayloadError

FORMATS = {"csv": "CSV", "jsonl": "JSON Lines"}
PARTS = ("inputs", "expectations", "outputs", "tags")
JSON_COLUMNS = ("inputs", "expectations", "tags")


def format_of(filename: str, content_type: str = "") -> str | None:
    """ "csv" or "jsonl" from a file name or a content type; None when neither says."""
    name = filename.lower()
    kind = content_type.split(";")[0].strip().lower()
    if name.endswith(".csv") or kind in ("text/csv", "application/csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")) or kind in (
        "application/jsonl",
        "application/x-ndjson",
        "application/x-jsonlines",
        "application/jsonlines",
    ):
        return "jsonl"
    return None


def _text(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PayloadError([("file", f"is not UTF-8 text (byte {error.start + 1} is not); save it as UTF-8 and upload it again")]) from None


def parse_upload(content: bytes, file_format: str) -> list[RecordIn]:
    """The file's records, or PayloadError listing every row and column at fault (nothing is half-read)."""
    if file_format not in FORMATS:
        raise PayloadError([("format", f"must be one of {', '.join(FORMATS)}")])
    text = _text(content)
    records = parse_csv(text) if file_format == "csv" else parse_jsonl(text)
    if not records:
        raise PayloadError([("file", "holds no records; the first row names the columns" if file_format == "csv" else "holds no records")])
    return records


def parse_jsonl(text: str) -> list[RecordIn]:
    errors = Errors()
    records: list[RecordIn] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(records) >= MAX_RECORDS_PER_MERGE:
            raise PayloadError([("file", f"holds more than {MAX_RECORDS_PER_MERGE:,} records; upload it in parts")])
        try:
            item = strict_json.loads(line)
        except ValueError as error:
            errors.add(f"line {number}", f"is not a JSON object: {error}")
            continue
        record = parse_record(errors, f"line {number}", item)
        if record is not None:
            records.append(record)
    errors.raise_any()
    return records


def _columns(header: list[str]) -> list[tuple[str, str]]:
    """Each column as (part, key): ("inputs", "question") for `inputs.question`, ("inputs", "") for `inputs`."""
    errors = Errors()
    columns: list[tuple[str, str]] = []
    for index, name in enumerate(header, start=1):
        part, _, key = name.strip().partition(".")
        if part not in PARTS or (_ and not key):
            errors.add(
                f"row 1, column {index} ({name!r})",
                "is not a column this upload reads; name it inputs.<key>, expectations.<key>, "
                "outputs, tags.<key>, or inputs/expectations/tags holding a JSON object",
            )
        elif (part, key) in columns:
            errors.add(f"row 1, column {index} ({name!r})", "appears twice")
        columns.append((part, key))
    for part in PARTS:
        if (part, "") in columns and any(p == part and k for p, k in columns):
            errors.add("row 1", f"has both a {part!r} column and {part}.<key> columns; use one or the other")
    if not any(part == "inputs" for part, _ in columns):
        errors.add("row 1", "has no inputs column: name one inputs.<key> (e.g. inputs.question) or inputs (a JSON object)")
    errors.raise_any()
    return columns


def _json_cell(errors: Errors, where: str, cell: str) -> Any:
    try:
        return strict_json.loads(cell)
    except ValueError as error:
        errors.add(where, f"is not valid JSON ({error})")
        return UNSET


def _facts(errors: Errors, where: str, cell: str) -> Any:
    if cell.lstrip().startswith("["):
        return _json_cell(errors, where, cell)
    return [line.strip() for line in cell.splitlines() if line.strip()]


def _row_record(errors: Errors, number: int, header: list[str], columns: list[tuple[str, str]], row: list[str]) -> RecordIn | None:
    where = f"row {number}"
    if len(row) > len(columns):
        errors.add(where, f"has {len(row)} cells but the header names {len(columns)} columns (an unquoted comma?)")
        return None
    parts: dict[str, Any] = {"inputs": {}, "expectations": {}, "tags": {}, "outputs": UNSET}
    failed = False
    for (part, key), name, cell in zip(columns, header, row):
        at = f"{where}, column {name.strip()}"
        if "\x00" in cell:
            errors.add(at, "holds the NUL character, which can't be stored; remove it")
            failed = True
        elif cell == "":
            continue
        elif part == "outputs":
            if key:
                parts["outputs"] = parts["outputs"] if isinstance(parts["outputs"], dict) else {}
                parts["outputs"][key] = cell
            else:
                parts["outputs"] = cell
        elif not key:
            value = _json_cell(errors, at, cell)
            if value is UNSET:
                failed = True
            else:
                parts[part] = value
        else:
            value = _facts(errors, at, cell) if (part, key) == ("expectations", "expected_facts") else cell
            if value is UNSET:
                failed = True
            else:
                parts[part][key] = value
    inputs = check_inputs(errors, f"{where}, inputs", parts["inputs"])
    expectations = check_expectations(errors, f"{where}, expectations", parts["expectations"])
    tags = check_tags(errors, f"{where}, tags", parts["tags"])
    if failed or inputs is None or expectations is None or tags is None:
        return None
    record = RecordIn(inputs=inputs, expectations=expectations, outputs=parts["outputs"], tags=tags)
    return record if check_storable(errors, where, record) else None


def parse_csv(text: str) -> list[RecordIn]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    number = 1
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = _columns(header)
        errors = Errors()
        records: list[RecordIn] = []
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(records) >= MAX_RECORDS_PER_MERGE:
                raise PayloadError([("file", f"holds more than {MAX_RECORDS_PER_MERGE:,} records; upload it in parts")])
            record = _row_record(errors, number, header, columns, row)
            if record is not None:
                records.append(record)
    except csv.Error as error:
        raise PayloadError([(f"row {number + 1}", f"is not valid CSV ({error})")]) from None
    errors.raise_any()
    return records
