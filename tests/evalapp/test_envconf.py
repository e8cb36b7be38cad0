from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from evalapp.envconf import database_from_url, env_bool, env_choice, env_int, env_list


def test_env_bool_is_strict():
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ImproperlyConfigured, match="X='maybe' is not a boolean"):
        env_bool("X", False, environ={"X": "maybe"})


def test_env_int_checks_type_and_bounds():
    assert env_int("N", 5, environ={"N": " 7 "}) == 7
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("N", 5, environ={"N": "7s"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum of 1"):
        env_int("N", 5, minimum=1, environ={"N": "0"})


def test_env_choice_and_list():
    assert env_choice("LEVEL", "INFO", ("DEBUG", "INFO"), environ={"LEVEL": "debug"}) == "DEBUG"
    with pytest.raises(ImproperlyConfigured, match="not one of DEBUG, INFO"):
        env_choice("LEVEL", "INFO", ("DEBUG", "INFO"), environ={"LEVEL": "LOUD"})
    assert env_list("HOSTS", ["a"], environ={"HOSTS": "x.com, y.com,"}) == ["x.com", "y.com"]


def test_postgres_url_is_parsed():
    config = database_from_url("postgres://app:s%3Acret@db.internal:6543/evals?sslmode=require")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "app",
        "s:cret",
        "db.internal",
        "6543",
        "evals",
    )
    assert config["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_url_gets_the_concurrency_settings():
    config = database_from_url("sqlite:////var/lib/evalapp/db.sqlite3")
    assert config["NAME"] == "/var/lib/evalapp/db.sqlite3"
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


@pytest.mark.parametrize("url", ["mysql://x@y/z", "postgres://x@y/", "postgres://x@y:port/db"])
def test_bad_database_urls_are_refused(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url(url)
