"""Guessing passwords and API tokens: counted per account and per address, refused past the limits with a message a
person can read (the login page) or a 429 with Retry-After (the API), each failure an audit line that holds no
password or token (accounts.throttle)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import throttle
from accounts.actions import create_api_token

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

PASSWORD = "pat-password-123"  # the `user` fixture's
ACCOUNT_REFUSED = "Too many failed logins for this username"
ADDRESS_REFUSED = "Too many failed logins from your network address"


@pytest.fixture
def limits(settings):
    settings.EVALAPP_LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.EVALAPP_LOGIN_FAILURES_PER_ADDRESS = 5
    settings.EVALAPP_TOKEN_FAILURES_PER_ADDRESS = 3
    settings.EVALAPP_AUTH_FAILURE_WINDOW_SECONDS = 900
    return settings


def log_in(client, username: str, password: str, address: str, path: str = "/login/") -> str:
    """POST the login form from `address`; the page's text ("" when it logged in and was redirected)."""
    response = client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)
    logged_in = response.status_code == 302 and "_auth_user_id" in client.session
    client.logout()
    return "" if logged_in else response.content.decode()


# --- logins ---------------------------------------------------------------------------------------------------------


@time_machine.travel(timezone.now().replace(minute=0, second=1), tick=False)  # 899 s left in the window
def test_an_account_is_refused_after_too_many_wrong_passwords(client, user, limits, caplog):
    with caplog.at_level(logging.INFO, logger="accounts.audit"):
        for attempt in range(3):
            assert "Please enter a correct username and password" in log_in(client, "pat", f"guess-{attempt}-secret", "10.0.0.1")
        page = log_in(client, "pat", PASSWORD, "10.0.0.2")  # the right password, from another address
    assert ACCOUNT_REFUSED in page and "Try again in 15 minutes" in page
    response = client.post("/login/", {"username": "pat", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2")
    assert response.status_code == 429 and response["Retry-After"] == "899"
    assert "failed login for 'pat' from 10.0.0.1 (3 of 3 for the username" in caplog.text
    assert "login locked for 'pat'" in caplog.text and "login refused unchecked" in caplog.text
    assert "guess-" not in caplog.text and PASSWORD not in caplog.text


def test_the_lock_ends_with_the_window_and_refused_attempts_do_not_extend_it(client, user, limits):
    with time_machine.travel(timezone.now().replace(minute=0, second=1), tick=False) as traveller:
        for attempt in range(3):
            log_in(client, "pat", f"wrong-{attempt}", "10.0.0.1")
        for _ in range(10):
            assert ACCOUNT_REFUSED in log_in(client, "pat", PASSWORD, "10.0.0.3")
        traveller.shift(timedelta(minutes=15))
        assert log_in(client, "pat", PASSWORD, "10.0.0.3") == ""


def test_a_stranger_cannot_lock_the_owner_out_where_they_logged_in_before(client, user, limits):
    assert log_in(client, "pat", PASSWORD, "192.0.2.10") == ""  # the owner's usual address
    for attempt in range(5):
        log_in(client, "pat", f"wrong-{attempt}", "203.0.113.66")  # the stranger
    assert ACCOUNT_REFUSED in log_in(client, "pat", PASSWORD, "198.51.100.1")  # anywhere new: locked
    assert log_in(client, "pat", PASSWORD, "192.0.2.10") == ""  # but not at home


def test_an_address_guessing_across_usernames_is_refused(client, user, limits):
    for number in range(5):
        assert ADDRESS_REFUSED not in log_in(client, f"someone{number}", "guess", "10.0.0.1")
    assert ADDRESS_REFUSED in log_in(client, "pat", PASSWORD, "10.0.0.1")  # even with the right password
    assert log_in(client, "pat", PASSWORD, "10.0.0.2") == ""  # other addresses are not affected


def test_a_success_does_not_reset_another_addresss_count(client, user, django_user_model, limits):
    django_user_model.objects.create_user(username="eve", password="eve-password-123")
    for number in range(4):
        log_in(client, f"someone{number}", "guess", "10.0.0.1")
    assert log_in(client, "pat", PASSWORD, "10.0.0.2") == ""
    assert log_in(client, "eve", "eve-password-123", "10.0.0.1") == ""  # the guesser logs in to its own account
    log_in(client, "someone9", "guess", "10.0.0.1")
    assert ADDRESS_REFUSED in log_in(client, "eve", "eve-password-123", "10.0.0.1")


def test_an_ipv6_address_counts_as_its_64(client, user, limits):
    for number in range(5):
        log_in(client, f"someone{number}", "guess", f"2001:db8:1:2::{number + 1}")
    assert ADDRESS_REFUSED in log_in(client, "pat", PASSWORD, "2001:db8:1:2:ffff::9")
    assert log_in(client, "pat", PASSWORD, "2001:db8:1:3::1") == ""


def test_usernames_differing_in_case_count_together(client, user, limits):
    for name in ("pat", "PAT", " Pat "):
        log_in(client, name, "guess", "10.0.0.1")
    assert ACCOUNT_REFUSED in log_in(client, "pat", PASSWORD, "10.0.0.2")


def test_the_admin_login_is_limited_too(admin_user, client, limits):
    for attempt in range(3):
        log_in(client, "admin", f"wrong-{attempt}", "10.0.0.1", path="/admin/login/")
    assert ACCOUNT_REFUSED in log_in(client, "admin", "password", "10.0.0.2", path="/admin/login/")


def test_behind_a_proxy_the_forwarded_address_counts(client, user, limits):
    limits.EVALAPP_PROXY_COUNT = 1
    for number in range(5):
        client.post(
            "/login/",
            {"username": f"someone{number}", "password": "guess"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR=f"1.2.3.{number}, 198.51.100.7",
        )
    # The proxy's own address is not locked; the client's is, whatever it writes in front.
    assert (
        ADDRESS_REFUSED
        not in client.post(
            "/login/", {"username": "pat", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.8"
        ).content.decode()
    )
    client.logout()
    response = client.post(
        "/login/", {"username": "pat", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.7"
    )
    assert ADDRESS_REFUSED in response.content.decode()


def test_an_unknown_username_is_not_written_to_the_log(client, limits, caplog):
    with caplog.at_level(logging.INFO, logger="accounts.audit"):
        log_in(client, "my-Secret-Passw0rd", "guess", "10.0.0.1")  # a password typed into the username box
    assert "failed login for an unknown username" in caplog.text and "my-Secret-Passw0rd" not in caplog.text


# --- API tokens ------------------------------------------------------------------------------------------------------


def api_client(token: str, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_failed_tokens_get_429_with_retry_after_past_the_limit(token, limits, caplog):
    guesser = api_client("ea_guessed-token-value-0123456789", "10.0.0.1")
    with caplog.at_level(logging.INFO, logger="accounts.audit"):
        assert [guesser.get("/api/v1/experiments").status_code for _ in range(3)] == [401, 401, 401]
        refused = guesser.get("/api/v1/experiments")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 900
    assert "Too many failed API token attempts" in refused.json()["detail"]
    assert "failed API token authentication from 10.0.0.1: unknown or revoked token (3 of 3" in caplog.text
    assert "guessed-token" not in caplog.text and token not in caplog.text
    # A malformed header counts as a failure too; OTLP exporters get the same answer.
    assert (
        APIClient(REMOTE_ADDR="10.0.0.1")
        .post("/v1/traces", b"", content_type="application/x-protobuf", HTTP_AUTHORIZATION="Bearer a b")
        .status_code
        == 429
    )


def test_a_valid_token_still_works_and_other_addresses_are_not_affected(token, limits):
    guesser = api_client("ea_wrong", "10.0.0.1")
    for _ in range(5):
        guesser.get("/api/v1/experiments")
    assert guesser.get("/api/v1/experiments").status_code == 429
    assert api_client(token, "10.0.0.1").get("/api/v1/experiments").status_code == 200  # the real token, same address
    assert api_client("ea_wrong", "10.0.0.2").get("/api/v1/experiments").status_code == 401


def test_a_revoked_token_counts_as_a_failure(user, limits, caplog):
    stored, raw = create_api_token(user, "old")
    stored.revoked_at = timezone.now()
    stored.save(update_fields=["revoked_at"])
    client = api_client(raw, "10.0.0.1")
    assert [client.get("/api/v1/experiments").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert raw not in caplog.text


def test_counts_are_shared_with_other_processes(gunicorn, settings):
    """gunicorn (another process, the deployed server) refuses a token at once after failures this process
    counted: the counts live in the database's cache table (or Redis), not in one process's memory."""
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "evalapp_throttle"},
    }
    request = type("Request", (), {"META": {"REMOTE_ADDR": "127.0.0.1"}})()
    try:
        for _ in range(settings.EVALAPP_TOKEN_FAILURES_PER_ADDRESS):
            assert throttle.token_failed(request, "counted by the test") is None
        status, body = gunicorn.post("/api/v1/experiments", b"{}", {"Authorization": "Token ea_nope", "Content-Type": "application/json"})
        assert status == 429, body
    finally:
        caches["throttle"].clear()  # gunicorn-based tests after this one send from 127.0.0.1 too
