from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts import throttle
from accounts.models import ApiToken, hash_token


class TooManyFailures(exceptions.APIException):
    """429 with Retry-After (DRF's exception handler sets it from `wait`), after too many failed tokens."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_failures"

    def __init__(self, refusal: throttle.Refusal):
        super().__init__(refusal.message)
        self.wait = refusal.retry_after


def _failed(request, message: str, why: str) -> exceptions.APIException:
    """A failed authentication, counted (accounts.throttle): 401 with `message`, or 429 past the limit."""
    refusal = throttle.token_failed(request, why)
    return TooManyFailures(refusal) if refusal is not None else exceptions.AuthenticationFailed(message)


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <token>` or `Authorization: Bearer <token>` (what OTLP exporters send)."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise _failed(request, _("Invalid Authorization header: expected 'Token <your API token>'."), "malformed header")
        try:
            raw = parts[1].decode()
        except UnicodeError:
            raise _failed(request, _("Invalid token: it contains characters a token never has."), "undecodable token") from None
        token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()
        if token is None or not token.user.is_active:
            # A valid token is accepted even past the limit (see accounts.throttle); the token itself is never logged.
            why = "unknown or revoked token" if token is None else f"token {token.prefix}… of the inactive user {token.user}"
            raise _failed(request, _("Invalid or revoked API token."), why)
        token.touch()
        return (token.user, token)

    def authenticate_header(self, request) -> str:
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ApiTokenAuthentication (drf-spectacular finds it by its target class)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        # Declared as HTTP bearer so Swagger UI's "Authorize" sends `Bearer <token>`, which the API accepts
        # alongside `Token <token>`.
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Token <token>` or `Authorization: Bearer <token>`. "
            "Create one with `python manage.py create_token <user>`; it is shown once.",
        }
