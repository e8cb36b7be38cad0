"""Deploy checks: the README's production settings pass `manage.py check --deploy` with nothing to fix, and do
what they say (HTTPS only, secure cookies, HSTS, a login that expires); every page carries the
Content-Security-Policy; the admin is for staff only."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# The README's "Production settings" (besides DATABASE_URL, REDIS_URL and EVALAPP_ENCRYPTION_KEYS).
PRODUCTION = {"EVALAPP_HTTPS": "true", "ALLOWED_HOSTS": "evals.example.com", "CSRF_TRUSTED_ORIGINS": "https://evals.example.com"}


def manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    # (DJANGO_ALLOW_ASYNC_UNSAFE comes from the browser tests' conftest when they run in the same session.)
    dropped = ("SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(EVALAPP_VAR_DIR=str(tmp_path), SECRET_KEY=secrets.token_urlsafe(50), **variables)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def settings_in(tmp_path: Path, *names: str, **variables: str) -> dict:
    script = f"import json; from django.conf import settings; print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    return json.loads(manage(tmp_path, "shell", "-c", script, **variables).stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    checked = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert checked.returncode == 0, checked.stderr
    assert "no issues" in checked.stdout
    # ... and not without them: the check is the one that would complain.
    plain = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert plain.returncode != 0 and "SESSION_COOKIE_SECURE" in plain.stderr


def test_the_production_settings_turn_on_https_only_secure_cookies_hsts_and_session_expiry(tmp_path):
    names = ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_AGE"]
    assert settings_in(tmp_path, *names, **PRODUCTION) == {
        "SECURE_SSL_REDIRECT": True, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_PRELOAD": False, "SESSION_COOKIE_AGE": 24 * 3600,
    }
    assert settings_in(tmp_path, "SESSION_COOKIE_AGE", "SECURE_SSL_REDIRECT", EVALAPP_SESSION_HOURS="2") == {"SESSION_COOKIE_AGE": 7200, "SECURE_SSL_REDIRECT": False}
    refused = manage(tmp_path, "check", EVALAPP_SESSION_HOURS="0")
    assert refused.returncode != 0 and "EVALAPP_SESSION_HOURS" in refused.stderr


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000, SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_with_https_on_plain_http_is_redirected_but_healthz_is_not_and_cookies_are_secure(user):
    client = Client()  # made after the settings change: middleware reads them when it is built
    redirected = client.get("/login/")
    assert (redirected.status_code, redirected["Location"]) == (301, "https://testserver/login/")
    assert client.get("/healthz").status_code == 200  # load balancers probe over plain HTTP
    page = client.get("/login/", secure=True)
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    logged_in = client.post("/login/", {"username": "pat", "password": "pat-password-123"}, secure=True)
    assert logged_in.status_code == 302
    assert logged_in.cookies["sessionid"]["secure"] and logged_in.cookies["csrftoken"]["secure"]
    assert logged_in.cookies["sessionid"]["max-age"] == 24 * 3600


def test_every_page_and_answer_carries_the_content_security_policy(editor_client, experiment):
    for path in ["/login/", "/", f"/experiments/{experiment.pk}/overview", "/healthz", "/api/v1/experiments"]:
        policy = editor_client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, path


def test_no_template_has_inline_script_or_event_handler_attributes():
    """What the policy refuses, so a page would silently lose it (the browser tests catch what runs)."""
    import re

    offending = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=", r"\bhx-on", r"hx-trigger=\"[^\"]*\[", r"javascript:"):
            offending += [f"{template.relative_to(ROOT)}: {match.group(0)}" for match in re.finditer(pattern, text)]
    assert offending == []


def test_the_admin_is_for_staff_only(client, user, django_user_model):
    client.force_login(user)  # an editor, not staff
    response = client.get(reverse("admin:traces_trace_changelist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    staff = django_user_model.objects.create_user("sam", password="sam-password-123", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get(reverse("admin:traces_trace_changelist")).status_code == 200
