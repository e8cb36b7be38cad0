"""Admission for ingest under overload: a bounded number of writers, and a bounded wait for the database's locks.

OTLP/HTTP, OTLP/gRPC and the JSON API take an *ingest slot* once the request is authenticated and its body read,
before they decode and store it, and give it back when the request is answered. The slots (`EVALAPP_INGEST_WRITERS`) are shared by every process on the
machine — gunicorn's workers and the gRPC receiver's threads alike — as `flock` locks on small files, taken
without waiting: when all are held the request is refused at once with `IngestBusy` (503 + `Retry-After`,
gRPC UNAVAILABLE + RetryInfo), before anything is written, instead of queueing for the database while the
exporter's own timeout runs out. A process that dies lets go of its slot with its file descriptors.

For the whole request (the API token's last-use stamp is a write too), a transaction waits at most
`EVALAPP_INGEST_LOCK_WAIT_SECONDS` for the database's write locks (SQLite's busy timeout; PostgreSQL's `lock_timeout`, which covers the per-trace advisory locks); past that
the transaction rolls back and `traces.database.database_busy` turns it into the same 503."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 60.0
_refusals = {"since_logged": 0, "last_logged": float("-inf")}
_refusals_lock = threading.Lock()


def _count_refusal(writers: int) -> None:
    """One log line per minute per process, not one per refused request (an overload is many of them)."""
    with _refusals_lock:
        _refusals["since_logged"] += 1
        now = time.monotonic()
        if now - _refusals["last_logged"] < LOG_EVERY_SECONDS:
            return
        count, _refusals["since_logged"], _refusals["last_logged"] = _refusals["since_logged"], 0, now
    logger.warning(
        "ingest overloaded: refused %d request(s) in this process with 503 since the last report, all %d ingest slot(s) "
        "of this machine being taken (EVALAPP_INGEST_WRITERS)",
        count,
        writers,
    )


class IngestBusy(Exception):
    """Every ingest slot is taken: nothing was decoded or stored; try again after `retry_after` seconds."""

    def __init__(self, writers: int, retry_after: int):
        self.writers = writers
        self.retry_after = retry_after
        if writers == 0:
            detail = "Ingest is switched off on this server (EVALAPP_INGEST_WRITERS=0)"
        else:
            detail = f"The server is already storing {writers} ingest request(s), its limit"
        super().__init__(f"{detail}; nothing was stored. Send the same request again in {retry_after} s.")


def slot_directory(alias: str = DEFAULT_DB_ALIAS) -> Path:
    """One set of slots per database: two servers (or a test run) on one machine with different databases don't
    take each other's slots; every process writing to the same database shares them."""
    return slot_directory_for(connections[alias].settings_dict)


def slot_directory_for(database: dict) -> Path:
    identity = "|".join(str(database.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME"))
    return Path(settings.VAR_DIR) / "ingest-slots" / hashlib.sha256(identity.encode()).hexdigest()[:16]


@contextmanager
def ingest_slot() -> Iterator[int]:
    """Holds one of the machine's ingest slots for the block (yields its number), or raises IngestBusy at once."""
    writers = settings.EVALAPP_INGEST_WRITERS
    retry_after = settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS
    if writers == 0:
        _count_refusal(0)
        raise IngestBusy(0, retry_after)
    directory = slot_directory()
    directory.mkdir(parents=True, exist_ok=True)
    # Start at a different slot in each process so that most takes succeed on the first try.
    first = os.getpid() % writers
    for step in range(writers):
        number = (first + step) % writers
        descriptor = os.open(directory / f"slot-{number}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            raise
        try:
            yield number
        finally:
            os.close(descriptor)  # closing the only descriptor of this open file releases its lock
        return
    _count_refusal(writers)
    raise IngestBusy(writers, retry_after)


@contextmanager
def bounded_lock_wait(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """For the block, a transaction waits at most EVALAPP_INGEST_LOCK_WAIT_SECONDS for a lock, then fails with an
    OperationalError that `database_busy` recognises. Must be entered outside a transaction."""
    connection = connections[alias]
    milliseconds = int(settings.EVALAPP_INGEST_LOCK_WAIT_SECONDS * 1000)
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            usual = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds:d}")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(usual):d}")
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {milliseconds:d}")
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
            except DatabaseError:
                connection.close()  # a connection that can't take the RESET must not be reused with the bound
    else:  # pragma: no cover - the two databases evalapp supports are above
        yield
