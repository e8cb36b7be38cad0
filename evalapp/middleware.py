"""Answers for a bad day, and headers for every day.

DatabaseOutageMiddleware: a database that can't be reached is a 503 with Retry-After (OTLP exporters retry on it;
the request wrote nothing, since every write is one transaction that never began), JSON for the API and OTLP, a
short page for a browser, and one log line per minute per process instead of a traceback per request.

ContentSecurityPolicyMiddleware: the Content-Security-Policy header on every response (see CONTENT_SECURITY_POLICY
in settings for what it allows and why)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from traces.database import database_busy, database_unavailable, describe

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0


def wants_json(request: HttpRequest) -> bool:
    """API clients and exporters get JSON; a browser (an HTML page or an htmx request) gets a page."""
    if request.path.startswith(("/api/", "/v1/", "/healthz")):
        return True
    accept = request.headers.get("Accept", "")
    return "text/html" not in accept and not request.headers.get("HX-Request")


def unavailable_response(request: HttpRequest, *, busy: bool) -> HttpResponse:
    retry_after = settings.EVALAPP_RETRY_AFTER_SECONDS if not busy else settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS
    if busy:
        detail = "The database is busy with other writes; nothing was stored. Try again in a moment."
    else:
        detail = "The database is unavailable; nothing was stored. Try again later."
    if wants_json(request):
        response: HttpResponse = JsonResponse({"detail": detail}, status=503)
    else:
        html = render_to_string("503.html", {"detail": detail, "retry_after": retry_after})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # django.request would log every one; DatabaseOutageMiddleware logs a summary
    return response


class DatabaseOutageMiddleware:
    """Catches what a view raised when the database was down or (SQLite) busy; anything else goes on to Django's
    500. Exceptions raised by middleware after this one (the session saved on the way out) are not seen here;
    the views themselves are where the database is read and written."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.last_logged = {"down": float("-inf"), "busy": float("-inf")}
        self.since_logged = {"down": 0, "busy": 0}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if database_unavailable(exception):
            kind = "down"
        elif database_busy(exception):
            kind = "busy"
        else:
            return None
        self.log(kind, request, exception)
        return unavailable_response(request, busy=kind == "busy")

    def log(self, kind: str, request: HttpRequest, exception: Exception) -> None:
        self.since_logged[kind] += 1
        now = time.monotonic()
        if now - self.last_logged[kind] < LOG_EVERY_SECONDS:
            return
        what = "unavailable" if kind == "down" else "busy (a wait for a write lock ran out)"
        logger.warning(
            "database %s: answered 503 to %d request(s) in this process since the last report, the latest %s %s (%s)",
            what,
            self.since_logged[kind],
            request.method,
            request.path,
            describe(exception),
        )
        self.last_logged[kind], self.since_logged[kind] = now, 0


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.policy = "; ".join(f"{name} {' '.join(sources)}".strip() for name, sources in settings.CONTENT_SECURITY_POLICY.items())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
