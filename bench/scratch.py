"""What the in-process benches share: a scratch database (a temp SQLite file, or a PostgreSQL database dropped and
made again) with the migrations applied and Django set up, and the percentile they print."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def setup_database(args, name: str, *, var_dir: str = "", fresh: bool = True) -> None:
    """`args.db` "sqlite" or "postgres" (`args.postgres_url` names the scratch database); `name` tells the temp
    var dirs of the benches apart. `var_dir` (where the SQLite file lives) instead of a new temp dir; fresh=False
    keeps the PostgreSQL database if it is there. Call before importing anything of Django's."""
    os.environ.pop("REDIS_URL", None)
    os.environ["EVALAPP_VAR_DIR"] = var_dir or tempfile.mkdtemp(prefix=f"evalapp-bench-{name}-")
    os.environ["EVALAPP_LOG_LEVEL"] = "WARNING"
    os.environ["EVALAPP_ENDPOINT_ALLOWED_HOSTS"] = "127.0.0.1"  # the stand-in model answers on loopback
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # settings refuse to start without one (DEBUG is off)
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalapp.settings"
    if args.db == "postgres":
        import psycopg

        parts = urlsplit(args.postgres_url)
        database = parts.path.lstrip("/")
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
            if fresh or not exists:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{database}"')
        os.environ["DATABASE_URL"] = args.postgres_url
    else:
        os.environ.pop("DATABASE_URL", None)
        if fresh and var_dir:
            for leftover in Path(var_dir).glob("evalapp.sqlite3*"):
                leftover.unlink()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
