"""Telling a database that is down from a query that went wrong.

A database that cannot be reached (refused or dropped connection, a file that can't be opened) is an outage: the
request did nothing, and the same request later will work, so the web side answers 503 with Retry-After and the
workers wait. A busy SQLite ("database is locked" after the busy timeout), or a PostgreSQL lock wait past ingest's
`lock_timeout`, is contention, not an outage: the
request did nothing either and may be retried, but the database is up. Any other OperationalError (a statement
timeout, a deadlock, a full disk) is not either of these and stays a 500 with its traceback."""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections import defaultdict

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

# SQLSTATE classes and codes that mean "no usable connection": 08 connection exception, 57P01-57P03 the server is
# shutting down or starting, 53300 too many connections.
_PG_UNAVAILABLE_CLASSES = ("08",)
_PG_UNAVAILABLE_CODES = ("57P01", "57P02", "57P03", "53300")
_PG_LOCK_NOT_AVAILABLE = "55P03"  # what lock_timeout raises
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "no such file")
_SQLITE_BUSY = ("database is locked", "database table is locked")

logger = logging.getLogger(__name__)
_last_logged: defaultdict[str, float] = defaultdict(lambda: float("-inf"))


def _driver_error(error: BaseException) -> BaseException | None:
    return error.__cause__ or error.__context__


def _psycopg_error(error: BaseException | None) -> bool:
    """Whether `error` is psycopg's. Looked up in sys.modules, not imported: on SQLite nothing loads psycopg (~20 MiB
    in every process, design note 47), and an error of a module never imported can't exist."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database can't be reached at all (not that a query failed)."""
    if isinstance(error, InterfaceError):  # the connection was already closed under us
        return True
    if not isinstance(error, OperationalError):
        return False
    cause = _driver_error(error)
    if _psycopg_error(cause):
        # A failed connect, or a connection lost mid-query, carries no SQLSTATE (the server never answered).
        sqlstate = cause.sqlstate
        return sqlstate is None or sqlstate.startswith(_PG_UNAVAILABLE_CLASSES) or sqlstate in _PG_UNAVAILABLE_CODES
    if isinstance(cause, sqlite3.Error):
        message = str(cause).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    return False


def database_busy(error: BaseException) -> bool:
    """Whether `error` is a lock wait running out — SQLite's busy timeout, or PostgreSQL's `lock_timeout` (which
    ingest sets, traces.admission): the database is up but another writer held what this one needed."""
    if not isinstance(error, OperationalError):
        return False
    cause = _driver_error(error)
    if _psycopg_error(cause):
        return cause.sqlstate == _PG_LOCK_NOT_AVAILABLE
    message = str(cause or error).lower()
    return any(text in message for text in _SQLITE_BUSY)


def describe(error: BaseException) -> str:
    """One line for a log or a health answer: the driver's first line, without the connection's password."""
    cause = _driver_error(error) or error
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"[:300]


def check_database(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """None if the database answers a trivial query; else why not, in words fit for anyone who asks (the error's
    class, not the driver's message, which names hosts and ports). Raises for other errors."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except (OperationalError, InterfaceError) as error:
        if not database_unavailable(error):
            raise
        connection.close_if_unusable_or_obsolete()
        now = time.monotonic()
        if now - _last_logged[alias] >= 60:  # load balancers ask every few seconds
            _last_logged[alias] = now
            logger.warning("database %r unavailable: %s", alias, describe(error))
        return f"{type(_driver_error(error) or error).__name__}: can't connect (the server log says why)"
    return None
