from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from evalapp.envconf import database_from_url, env_bool, env_choice, env_fernet_keys, env_int, env_list, secret_key


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


DEVELOPMENT_KEY = "dev-only-key"


def test_secret_key_comes_from_the_environment_then_the_key_file(tmp_path):
    key_file = tmp_path / "secret_key"
    assert secret_key(debug=False, development_key=DEVELOPMENT_KEY, key_file=key_file, environ={"SECRET_KEY": " s3cret "}) == "s3cret"
    key_file.write_text("from-the-file\n")
    assert secret_key(debug=False, development_key=DEVELOPMENT_KEY, key_file=key_file, environ={}) == "from-the-file"
    assert secret_key(debug=False, development_key=DEVELOPMENT_KEY, key_file=key_file, environ={"SECRET_KEY": "env"}) == "env"


def test_without_a_secret_key_only_debug_gets_the_development_key(tmp_path):
    missing = tmp_path / "secret_key"
    assert secret_key(debug=True, development_key=DEVELOPMENT_KEY, key_file=missing, environ={}) == DEVELOPMENT_KEY
    with pytest.raises(ImproperlyConfigured, match=r"SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random string"):
        secret_key(debug=False, development_key=DEVELOPMENT_KEY, key_file=missing, environ={"SECRET_KEY": "  "})
    with pytest.raises(ImproperlyConfigured, match=r"SECRET_KEY \(from SECRET_KEY\) is the development key"):
        secret_key(debug=False, development_key=DEVELOPMENT_KEY, key_file=missing, environ={"SECRET_KEY": DEVELOPMENT_KEY})


def test_encryption_keys_must_be_fernet_keys_and_a_bad_one_is_not_echoed():
    good = Fernet.generate_key().decode()
    assert env_fernet_keys("KEYS", environ={"KEYS": f"{good}, {good}"}) == [good, good]
    assert env_fernet_keys("KEYS", environ={}) == []
    with pytest.raises(ImproperlyConfigured, match=r"KEYS: key 2 of 2 is not a Fernet key") as refused:
        env_fernet_keys("KEYS", environ={"KEYS": f"{good},not-a-key-but-a-secret"})
    assert "not-a-key-but-a-secret" not in str(refused.value)
