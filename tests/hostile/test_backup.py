"""`manage.py backup` copies a live SQLite database while another thread ingests: the copy, restored in place of a
database and opened by the app, holds every trace committed before the backup began and passes SQLite's integrity
check. On PostgreSQL the command refuses and points at pg_dump."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection

from tests.conftest import ingest, make_trace
from tests.hostile.conftest import ROOT, deadline

pytestmark = [pytest.mark.hostile, pytest.mark.django_db(transaction=True)]

sqlite_only = pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('postgres')", reason="backs up SQLite")


class Ingesting(threading.Thread):
    """Stores batches of traces until stopped, remembering which batches have committed."""

    def __init__(self, experiment):
        super().__init__(daemon=True)
        self.experiment = experiment
        self.committed: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        batch = 0
        try:
            while not self.stop.is_set():
                ids = [f"b{batch}-{n}" for n in range(20)]
                ingest(self.experiment, *[make_trace(trace_id, minutes=batch) for trace_id in ids])
                with self.lock:
                    self.committed += ids
                batch += 1
        except BaseException as error:  # noqa: BLE001 — reported by the test
            self.error = error
        finally:
            close_old_connections()
            connection.close()

    def committed_now(self) -> set[str]:
        with self.lock:
            return set(self.committed)


def restored_trace_ids(backup: Path, tmp_path: Path) -> set[str]:
    """Restore the backup the README's way (copy it in place of the database) and ask the app, in a process of its
    own, which traces it has."""
    restored = tmp_path / "restored.sqlite3"
    shutil.copyfile(backup, restored)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{restored}", "SECRET_KEY": "x"}
    env.pop("REDIS_URL", None)
    script = "from traces.models import Trace; print(*('trace:' + i for i in Trace.objects.values_list('trace_id', flat=True)))"
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    unapplied = subprocess.run([sys.executable, "manage.py", "migrate", "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert unapplied.returncode == 0, unapplied.stdout + unapplied.stderr  # the schema came whole
    return {word.removeprefix("trace:") for word in done.stdout.split() if word.startswith("trace:")}


@sqlite_only
def test_a_backup_taken_under_ingest_restores_with_every_trace_committed_before_it(experiment, tmp_path):
    early = {f"early-{n}" for n in range(50)}
    ingest(experiment, *[make_trace(trace_id) for trace_id in early])
    writer = Ingesting(experiment)
    writer.start()
    try:
        with deadline(60):
            while len(writer.committed_now()) < 100 and writer.error is None:
                writer.stop.wait(0.01)
        before = writer.committed_now() | early
        backup = tmp_path / "evalapp-backup.sqlite3"
        call_command("backup", str(backup))
        during = writer.committed_now() | early
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    in_backup = restored_trace_ids(backup, tmp_path)
    assert before <= in_backup  # every trace committed before the backup began
    assert in_backup <= during  # and nothing that wasn't committed when it ended
    batches = {trace_id.split("-")[0] for trace_id in in_backup if trace_id.startswith("b")}
    assert all(f"{batch}-{n}" in in_backup for batch in batches for n in range(20))  # batches whole, never half


@sqlite_only
def test_a_backup_refuses_to_overwrite_or_to_write_over_the_live_database(tmp_path):
    existing = tmp_path / "there.sqlite3"
    existing.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists; pass --force"):
        call_command("backup", str(existing))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(CommandError, match="is the live database itself"):
        call_command("backup", connection.settings_dict["NAME"])
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".partial")]


@pytest.mark.skipif("not os.environ.get('DATABASE_URL', '').startswith('postgres')", reason="the PostgreSQL answer")
def test_on_postgresql_the_backup_command_points_at_pg_dump(tmp_path):
    with pytest.raises(CommandError, match="pg_dump"):
        call_command("backup", str(tmp_path / "backup.sqlite3"))
    assert not list(tmp_path.iterdir())
