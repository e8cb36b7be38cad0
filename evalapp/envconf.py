"""Strict readers for settings that come from environment variables.

A bad value raises ImproperlyConfigured naming the variable and what was expected, so a typo in a deployment
fails at start-up instead of silently falling back to a default.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_str(name: str, default: str, environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(name, default)


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum of {maximum}")
    return value


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_hosts(name: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Comma-separated host names (`.example.com` for a domain and every name under it), IP addresses and networks
    (`10.1.0.0/16`): the allowed list of judges.egress. A bad entry is refused by its text."""
    from judges.egress import parse_allowed

    entries = env_list(name, [], environ=environ)
    try:
        parse_allowed(entries)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None
    return entries


def env_choice(name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] = os.environ) -> str:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return value


def secret_key(*, debug: bool, development_key: str, key_file: Path, environ: Mapping[str, str] = os.environ) -> str:
    """SECRET_KEY from the environment, else from `key_file` (`./run app` writes a random one there, once, for the
    embedded setup). The development key, public in this repository, is accepted with DEBUG on only."""
    key = environ.get("SECRET_KEY", "").strip()
    source = "SECRET_KEY"
    if not key:
        try:
            key = key_file.read_text().strip()
        except FileNotFoundError:
            key = ""
        source = str(key_file)
    if key and key != development_key:
        return key
    if debug:
        return development_key
    how = (
        "set SECRET_KEY to a long random string, the same for every web and worker process of the deployment "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'); `./run app` keeps one in var/secret_key "
        "for the embedded setup, and DEBUG=1 allows the development key on your own machine"
    )
    if key:
        raise ImproperlyConfigured(f"SECRET_KEY (from {source}) is the development key, which is public, and DEBUG is off: {how}.")
    raise ImproperlyConfigured(f"SECRET_KEY is not set and DEBUG is off: {how}.")


def env_fernet_keys(name: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Comma-separated Fernet keys (32 url-safe base64-encoded bytes each). A bad one is refused by its position,
    never echoed: it is a secret."""
    keys = env_list(name, [], environ=environ)
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"{name}: key {position} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes); make one "
                "with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
    return keys


def sqlite_database(path: str, test_path: str | None = None) -> dict:
    """SQLite tuned for several writer processes (web + workers): WAL, IMMEDIATE transactions, busy timeout."""
    config: dict = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                "PRAGMA busy_timeout=30000;"
                "PRAGMA foreign_keys=ON;"
            ),
        },
    }
    if test_path:
        config["TEST"] = {"NAME": test_path}
    return config


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Parse `postgres://user:password@host:port/dbname?sslmode=...` or `sqlite:///path`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise ImproperlyConfigured(f"{name} has no database name (expected postgres://user@host:5432/dbname)")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as in SQLAlchemy and dj-database-url
        path = unquote(parts.netloc + parts.path)[1:] if not parts.netloc else unquote(parts.netloc + parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured(f"{name} has no file path (expected sqlite:////absolute/path.sqlite3)")
        return sqlite_database(path)
    raise ImproperlyConfigured(f"{name} scheme {parts.scheme!r} is not supported; use postgres:// or sqlite://")
