"""A logging filter for django-q2's logger (settings.LOGGING): while the database or Redis can't be reached, the
tracebacks django-q2 logs about it (the scheduler every 30 s, results it could not save) become one line a minute.
Imports no models: logging is configured before Django's apps are ready."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from traces.database import database_unavailable, describe

LOG_EVERY_SECONDS = 60.0


def store_unavailable(error: BaseException) -> bool:
    """The database or Redis can't be reached (not: a query or command failed). redis is looked up, not imported:
    without REDIS_URL nothing loads it (~20 MiB in every process, design note 47), and then no error is its."""
    redis = sys.modules.get("redis")
    return database_unavailable(error) or (redis is not None and isinstance(error, (redis.ConnectionError, redis.TimeoutError)))


class QuietOutageFilter(logging.Filter):
    """For django-q2's logger: a record carrying a traceback of an unreachable store becomes one line, at most
    once a minute per process; the rest are dropped. Other records pass untouched."""

    def __init__(self, name: str = "", *, clock: Callable[[], float] = time.monotonic):
        super().__init__(name)
        self.clock = clock
        self.last_passed: float | None = None
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not store_unavailable(error):
            return True
        now = self.clock()
        if self.last_passed is not None and now - self.last_passed < LOG_EVERY_SECONDS:
            self.dropped += 1
            return False
        record.msg = f"{record.getMessage()}: {describe(error)} (store unavailable; {self.dropped} like it dropped since the last)"
        record.args, record.exc_info, record.exc_text = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self.last_passed, self.dropped = self.clock(), 0
        return True
