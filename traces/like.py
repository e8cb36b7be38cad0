"""SQL LIKE without backtracking, for the filter language (traces.filters). Pure Python.

A regex translation (`%` → `.*`) backtracks: '%a%a%a%a%a%a%a%a%a%a%a%a%b' on 300 a's tries about 300^12 ways. Here
the work is at most about len(text) × len(pattern), however the wildcards are placed.
"""

from __future__ import annotations

import re
from functools import lru_cache


def fold_case(text: str) -> str:
    """How ILIKE compares: lower case, one character for one (so `_` still stands for one character; ß stays ß).
    The same function runs in memory and, registered by traces.apps, in SQLite; PostgreSQL's ILIKE lowers with
    the database's locale, which agrees for letters with a one-character lower case."""
    if text.isascii():
        return text.lower()
    return "".join(lower if len(lower := char.lower()) == 1 else char for char in text)


class LikePattern:
    """A LIKE pattern (`%` any run of characters, `_` any one character, nothing else special), matched without
    backtracking: at most about len(text) × len(pattern) steps, however the wildcards are placed.

    The pattern is cut at each `%` into pieces of fixed length. The first must match at the start of the text and
    the last at its end; each piece between is taken at its leftmost place after the one before. Taking the
    leftmost place never loses a match: a later place would only leave less text for the pieces that follow."""

    def __init__(self, pattern: str):
        pieces = pattern.split("%")
        self.exact = len(pieces) == 1  # no %: the whole text, length for length
        first, *middle, last = pieces if not self.exact else [pattern, ""]
        self.first, self.last = self._piece(first), self._piece(last)
        self.first_length, self.last_length = len(first), len(last)
        self.middle = [self._piece(piece) for piece in middle if piece]

    @staticmethod
    def _piece(piece: str) -> re.Pattern[str]:
        # Only literal characters and `.`: a fixed length, so each place tried costs at most len(piece) steps.
        return re.compile("(?s)" + "".join("." if char == "_" else re.escape(char) for char in piece))

    def matches(self, text: str) -> bool:
        if self.exact:
            return self.first.fullmatch(text) is not None
        end = len(text) - self.last_length  # where the last piece must start
        if end < self.first_length or self.first.match(text) is None or self.last.match(text, end) is None:
            return False
        position = self.first_length
        for piece in self.middle:
            found = piece.search(text, position, end)
            if found is None:
                return False
            position = found.end()
        return True


@lru_cache(maxsize=1024)
def like_pattern(pattern: str, case_sensitive: bool = True) -> LikePattern:
    return LikePattern(pattern if case_sensitive else fold_case(pattern))


def like(text: str, pattern: str, *, case_sensitive: bool = True) -> bool:
    """SQL LIKE (or ILIKE, with case_sensitive=False) with no escape character: `%` and `_` are always wildcards."""
    if case_sensitive:
        return like_pattern(pattern).matches(text)
    return like_pattern(pattern, False).matches(fold_case(text))
