"""Errors shared by judges' actions, jobs and their callers (views, API, commands)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid judge, endpoint or job settings: `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
