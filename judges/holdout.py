"""Which labelled items align() learns from and which it checks on: a hash of the item's id (a trace or session id)
decides, so an item is always on the same side — across runs, and as labels are added — and the two sides never
overlap. No Django."""

from __future__ import annotations

import hashlib

HELD_OUT_SHARE = 0.4  # 60% train, 40% held out


def held_out_fraction(item_id: str) -> float:
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_held_out(item_id: str) -> bool:
    """Whether an item (a trace id or session id) is held out: a property of its id alone."""
    return held_out_fraction(item_id) < HELD_OUT_SHARE


def split(item_ids: dict[int, str]) -> tuple[list[int], list[int]]:
    """(train, held-out) target pks, each sorted."""
    held = sorted(pk for pk, item_id in item_ids.items() if is_held_out(item_id))
    held_set = set(held)
    return sorted(pk for pk in item_ids if pk not in held_set), held

