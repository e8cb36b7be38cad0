"""The code blocks of the README and docs/*.md, read the way tests/docs/test_readme_examples.py runs them.

A fenced block in a ```sh / ```bash block runs with bash, a ```python block with the project's interpreter. Any
other block — and a runnable-looking one that must not run — carries a marker on the line just above its fence:

    <!-- example: not run — starts the web server and worker, which run until stopped -->
    <!-- example: setup — every Python example below it on this page runs after it -->

A "not run" marker needs its reason. A "setup" block runs before each Python block that follows it in the same
document (each block is its own process), so fragments can use the client and experiment it made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell"}
PYTHON = {"python", "py"}

FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<directive>[a-z ]+?)\s*(?:—|--|-|:)\s*(?P<reason>.*?)\s*-->\s*$")
ANY_MARKER = re.compile(r"^\s*<!--\s*example\b")  # a line that is a marker, not one that mentions it


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    directive: str = ""  # "", "not run" or "setup"
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def kind(self) -> str:
        """"shell", "python", or "" (nothing this harness can run)."""
        return "shell" if self.language in SHELL else "python" if self.language in PYTHON else ""


class DocumentError(ValueError):
    pass


def read_blocks(document: str, text: str | None = None) -> list[Block]:
    """Every fenced code block of `document`, with the marker above it. Raises DocumentError for a marker that is
    malformed, lacks a reason, or stands above no block, and for a fence left open."""
    lines = (text if text is not None else (ROOT / document).read_text()).splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str, str] | None = None  # (line, directive, reason) of a marker awaiting its block
    index = 0
    while index < len(lines):
        line = lines[index]
        if ANY_MARKER.search(line):
            match = MARKER.match(line)
            if match is None or match["directive"] not in ("not run", "setup"):
                raise DocumentError(f"{document}:{index + 1}: unreadable example marker {line.strip()!r}; write "
                                    "<!-- example: not run — <why> --> or <!-- example: setup — <what> -->")
            if not match["reason"]:
                raise DocumentError(f"{document}:{index + 1}: the marker says no reason; say why after the dash")
            pending = (index + 1, match["directive"], match["reason"])
            index += 1
            continue
        opening = FENCE.match(line)
        if opening is None:
            if pending is not None and line.strip():
                raise DocumentError(f"{document}:{pending[0]}: the example marker must be on the line right above a code block")
            index += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        language = info.split()[0].lower() if info else ""
        body: list[str] = []
        start = index
        index += 1
        while index < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[index]):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise DocumentError(f"{document}:{start + 1}: code block never closed")
        directive, reason = (pending[1], pending[2]) if pending else ("", "")
        if pending is not None and pending[0] != start:
            raise DocumentError(f"{document}:{pending[0]}: the example marker must be on the line right above a code block")
        blocks.append(Block(document, start + 1, language, "\n".join(body) + "\n", directive, reason))
        pending = None
        index += 1
    if pending is not None:
        raise DocumentError(f"{document}:{pending[0]}: the example marker stands above no code block")
    return blocks


def problems(blocks: list[Block]) -> list[str]:
    """What keeps these blocks from all being run or knowingly skipped."""
    found = []
    for block in blocks:
        if block.directive == "not run":
            continue
        if not block.kind:
            found.append(
                f"{block.where}: a ```{block.language or '(no language)'} block this test cannot run; make it a "
                "```sh or ```python example, or put <!-- example: not run — <why> --> on the line above it"
            )
        elif block.directive == "setup" and block.kind != "python":
            found.append(f"{block.where}: only a Python block can be a setup block")
    return found
