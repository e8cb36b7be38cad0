"""evalapp.settings, loaded the way a server loads them: in a fresh process, from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT_KEY = "dev-only-insecure-key-change-me-4b1d2c0e9a7f"


def start(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    """Load the settings as `manage.py` would, with no SECRET_KEY or DEBUG but those given."""
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="evalapp.settings", EVALAPP_VAR_DIR=str(tmp_path), **variables)
    script = "from django.conf import settings; print(len(settings.SECRET_KEY))"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variables", [{}, {"SECRET_KEY": DEVELOPMENT_KEY}], ids=["unset", "the development key"])
def test_settings_refuse_to_start_without_a_real_secret_key_when_debug_is_off(tmp_path, variables):
    started = start(tmp_path, **variables)
    assert started.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY" in started.stderr
    assert "DEBUG is off: set SECRET_KEY to a long random string" in started.stderr


def test_settings_start_with_a_secret_key_the_key_file_of_run_app_or_debug(tmp_path):
    assert start(tmp_path, SECRET_KEY="a-real-secret-key-0123456789").returncode == 0
    assert start(tmp_path, DEBUG="1").returncode == 0
    (tmp_path / "secret_key").write_text("written-by-run-app-0123456789\n")
    started = start(tmp_path)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == str(len("written-by-run-app-0123456789"))


def test_a_bad_encryption_key_refuses_to_start(tmp_path):
    started = start(tmp_path, SECRET_KEY="a-real-secret-key-0123456789", EVALAPP_ENCRYPTION_KEYS="short")
    assert started.returncode != 0
    assert "EVALAPP_ENCRYPTION_KEYS: key 1 of 1 is not a Fernet key" in started.stderr
