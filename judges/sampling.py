"""Deterministic sampling: the same trace (or session) and judge always get the same decision, and raising a
judge's rate only adds targets. Pure Python."""

from __future__ import annotations

import hashlib


def sample_point(target_id: str, judge_name: str) -> float:
    """sha256(f"{target_id}:{judge_name}") read as a number in [0, 1)."""
    digest = hashlib.sha256(f"{target_id}:{judge_name}".encode()).digest()
    return int.from_bytes(digest, "big") / 2**256


def is_sampled(target_id: str, judge_name: str, rate: float) -> bool:
    return sample_point(target_id, judge_name) < rate
