"""`manage.py backup <path>`: a consistent copy of the SQLite database, taken while the app runs and ingests.

SQLite's online backup API (`sqlite3.Connection.backup`) in one step: it reads inside one read transaction, so the
copy is exactly what was committed when it began, and in WAL mode (our setting) writers go on meanwhile — ingest is
not held up. (A backup in several steps would restart whenever another connection writes, so under steady ingest it
might never finish.) The copy is written next to the target and moved into place only after `PRAGMA
integrity_check` passes: a failed backup leaves no half-written file. PostgreSQL is backed up with pg_dump (README:
Backups)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection


def backup_sqlite(target: Path) -> dict[str, int]:
    """Copy the default (SQLite) database to `target` (replaced if there). Returns the copy's size in bytes and
    its number of traces."""
    connection.ensure_connection()
    source: sqlite3.Connection = connection.connection
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    try:
        copy = sqlite3.connect(temporary)
        try:
            source.backup(copy)
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise CommandError(f"the copy failed SQLite's integrity check ({check}); nothing was written to {target}")
            migrated = copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'traces_trace'").fetchone()
            traces = copy.execute("SELECT count(*) FROM traces_trace").fetchone()[0] if migrated else 0
        finally:
            copy.close()
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"bytes": target.stat().st_size, "traces": traces}


class Command(BaseCommand):
    help = "Copy the SQLite database to PATH while the app runs (SQLite's online backup). For PostgreSQL use pg_dump."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="where to write the copy (a file; its folder must exist)")
        parser.add_argument("--force", action="store_true", help="replace PATH if it exists")

    def handle(self, *args, path: str, force: bool, **options) -> None:
        if connection.vendor != "sqlite":
            raise CommandError(
                f"the database is {connection.vendor}, not SQLite: back it up with pg_dump "
                "(README: Backups), e.g. pg_dump --format=custom --file=evalapp.dump \"$DATABASE_URL\""
            )
        target = Path(path).expanduser().resolve()
        source = Path(connection.settings_dict["NAME"]).resolve()
        if target == source:
            raise CommandError(f"{path} is the live database itself; give another path")
        if not target.parent.is_dir():
            raise CommandError(f"{target.parent} is not a folder; make it first")
        if target.exists() and not force:
            raise CommandError(f"{target} exists; pass --force to replace it")
        copied = backup_sqlite(target)
        self.stdout.write(f"Backed up {source} to {target}: {copied['traces']} traces, {copied['bytes'] / 1e6:.1f} MB.")
