"""Failed logins and failed API-token authentications, counted per account and per address, and refused once there
were too many in a window.

- Logins (the login page and the admin's): after `EVALAPP_LOGIN_FAILURES_PER_ADDRESS` failures from one address, or
  `EVALAPP_LOGIN_FAILURES_PER_ACCOUNT` for one username (from anywhere), further attempts are refused unchecked
  until the window ends. A stranger can lock an account out only so far: the lock ends with the window (attempts it
  refuses are not counted, so they can't extend it), and it never applies at an address the account logged in from
  successfully in the last `KNOWN_ADDRESS_DAYS` days — there only the address's own limit holds.
- API tokens: after `EVALAPP_TOKEN_FAILURES_PER_ADDRESS` failures from an address, each further failure there is a
  429 with Retry-After. A valid token is always accepted: a token cannot be guessed (256 random bits), so the limit
  is there to stop scanners and broken exporters politely, and must not let a neighbour behind the same NAT cut
  off everyone's ingest.
- No success resets a counter: logging in to one's own account must not buy more guesses at another's.

Windows are fixed and aligned to the clock (`window` seconds each), so a burst across a window's end may get up to
twice the limit. An IPv6 address counts as its /64, which one machine usually holds whole. Counts live in the
"throttle" cache (Redis with REDIS_URL, else a table of the database), shared by every web process; no password,
token or username that doesn't exist is stored or logged."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction

logger = logging.getLogger("accounts.audit")

CACHE = "throttle"
KNOWN_ADDRESS_DAYS = 30


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused, and for how long."""

    retry_after: int  # seconds
    message: str


def client_address(request: Any) -> str:
    """The client's address: REMOTE_ADDR, or with `EVALAPP_PROXY_COUNT` proxies in front, the address the first of
    them saw (X-Forwarded-For, counted from the right, where a proxy appends; what a client wrote there is left)."""
    proxies = settings.EVALAPP_PROXY_COUNT
    address = request.META.get("REMOTE_ADDR", "")
    if proxies:
        forwarded = [item.strip() for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if item.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    return address


def address_key(address: str) -> str:
    """What one address counts as: itself (IPv4), or its /64 (IPv6)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def account_key(username: str) -> str:
    """A username as counted: case and surrounding spaces ignored, hashed (a password typed into the username box
    is never stored)."""
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


def _window() -> int:
    return settings.EVALAPP_AUTH_FAILURE_WINDOW_SECONDS


def _bucket(kind: str, key: str) -> tuple[str, int]:
    """The cache key of the current window for (kind, key), and the seconds left in that window."""
    now, window = time.time(), _window()
    number = int(now // window)
    return f"{kind}:{key}:{number}", max(1, math.ceil((number + 1) * window - now))


def _count(kind: str, key: str) -> tuple[int, int]:
    cache_key, left = _bucket(kind, key)
    return int(caches[CACHE].get(cache_key) or 0), left


def _bump(kind: str, key: str) -> int:
    """Add one failure; the count after it. Atomic: Redis INCR; on the database, the row is locked (PostgreSQL) or
    the write transaction is exclusive from its start (SQLite's IMMEDIATE mode), so concurrent failures all count."""
    cache_key, _ = _bucket(kind, key)
    cache = caches[CACHE]
    timeout = 2 * _window()
    if not isinstance(cache, DatabaseCache):
        cache.add(cache_key, 0, timeout)
        try:
            return cache.incr(cache_key)
        except ValueError:  # expired between the two calls
            cache.set(cache_key, 1, timeout)
            return 1
    alias = router.db_for_write(cache.cache_model_class)
    connection = connections[alias]
    with transaction.atomic(using=alias):
        cache.add(cache_key, 0, timeout)
        if connection.features.has_select_for_update:
            with connection.cursor() as cursor:
                table = connection.ops.quote_name(cache._table)
                cursor.execute(f"SELECT cache_key FROM {table} WHERE cache_key = %s FOR UPDATE", [cache.make_and_validate_key(cache_key)])
        value = int(cache.get(cache_key) or 0) + 1
        cache.set(cache_key, value, timeout)
    return value


def _wait(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def _who(username: str) -> str:
    """A username for the log: as typed if such an account exists, else not (it may be a mistyped password)."""
    if username and get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).exists():
        return repr(username)
    return f"an unknown username (#{account_key(username)[:8]})"


# --- logins ---------------------------------------------------------------------------------------------------------


def _known_key(username: str, address: str) -> str:
    return f"known:{account_key(username)}:{address_key(address)}"


def login_refusal(request: Any, username: str) -> Refusal | None:
    """Whether a login attempt is refused before the password is looked at."""
    address = client_address(request)
    failures, left = _count("login-address", address_key(address))
    if failures >= settings.EVALAPP_LOGIN_FAILURES_PER_ADDRESS:
        logger.warning("login refused unchecked: %d failed logins from %s this window (%s)", failures, address, _who(username))
        return Refusal(left, f"Too many failed logins from your network address. Try again in {_wait(left)}.")
    failures, left = _count("login-account", account_key(username))
    if failures >= settings.EVALAPP_LOGIN_FAILURES_PER_ACCOUNT and not caches[CACHE].get(_known_key(username, address)):
        logger.warning("login refused unchecked: %d failed logins for %s this window (from %s)", failures, _who(username), address)
        return Refusal(
            left,
            f"Too many failed logins for this username. Try again in {_wait(left)}, or from where you last logged in successfully.",
        )
    return None


def login_failed(request: Any, username: str) -> None:
    address = client_address(request)
    by_address = _bump("login-address", address_key(address))
    by_account = _bump("login-account", account_key(username))
    logger.info(
        "failed login for %s from %s (%d of %d for the username, %d of %d for the address this window)",
        _who(username), address, by_account, settings.EVALAPP_LOGIN_FAILURES_PER_ACCOUNT, by_address, settings.EVALAPP_LOGIN_FAILURES_PER_ADDRESS,
    )  # fmt: skip
    if by_address == settings.EVALAPP_LOGIN_FAILURES_PER_ADDRESS:
        logger.warning("login locked for the address %s for the rest of the window: %d failed logins", address, by_address)
    if by_account == settings.EVALAPP_LOGIN_FAILURES_PER_ACCOUNT:
        logger.warning(
            "login locked for %s for the rest of the window (except where it logged in before): %d failed logins",
            _who(username),
            by_account,
        )


def login_succeeded(request: Any, username: str) -> None:
    """Remember the address as one this account logs in from: the account's lock does not apply there."""
    caches[CACHE].set(_known_key(username, client_address(request)), 1, KNOWN_ADDRESS_DAYS * 86400)


# --- API tokens -----------------------------------------------------------------------------------------------------


def token_failed(request: Any, why: str) -> Refusal | None:
    """Count a failed token authentication; a Refusal (→ 429) once the address is past its limit this window."""
    address = client_address(request)
    failures, left = _count("token-address", address_key(address))
    limit = settings.EVALAPP_TOKEN_FAILURES_PER_ADDRESS
    if failures >= limit:  # not counted any further: a flood writes nothing
        return Refusal(left, f"Too many failed API token attempts from your network address. Try again in {_wait(left)}.")
    failures = _bump("token-address", address_key(address))
    logger.info("failed API token authentication from %s: %s (%d of %d this window)", address, why, failures, limit)
    if failures == limit:
        logger.warning("API token attempts from %s refused for the rest of the window: %d failures", address, failures)
    return None
