"""What the client raises. Every failed call raises; nothing is swallowed or turned into a None.

The token is never part of an error: messages carry the method, the path and the server's own words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem the server found, and where: `field` is a JSON path such as `traces[3].spans[0].start_time`."""

    field: str
    message: str


class EvalappError(Exception):
    """A call to evalapp failed.

    `status_code` is the HTTP status (None when the server could not be reached), `detail` the server's
    explanation, `errors` the per-field problems (empty when the server named none)."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        errors: list[FieldError] | None = None,
        method: str = "",
        path: str = "",
    ):
        self.detail = detail
        self.status_code = status_code
        self.errors = list(errors or [])
        self.method = method
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.method} {self.path}".strip()
        head = f"{self.status_code} " if self.status_code is not None else ""
        message = f"{head}{where}: {self.detail}" if where else f"{head}{self.detail}"
        # The detail usually repeats the first field error; list the rest so none is lost in a log line.
        extra = [f"{e.field}: {e.message}" for e in self.errors if f"{e.field}: {e.message}" not in self.detail]
        if extra:
            message += " [" + "; ".join(extra) + "]"
        return message

    @property
    def fields(self) -> dict[str, str]:
        """The field errors as {field: message}."""
        return {error.field: error.message for error in self.errors}


class BadRequestError(EvalappError):
    """400: the request was refused as a whole; `errors` says which fields were wrong."""


class AuthenticationError(EvalappError):
    """401: missing, invalid or revoked token."""


class PermissionDeniedError(EvalappError):
    """403: the token's user may read but not change this (only editors change judges and endpoints)."""


class NotFoundError(EvalappError):
    """404: no such experiment, judge, trace, session, endpoint or job."""


class ServerError(EvalappError):
    """5xx: the server failed (or, for 501, that part is not built yet)."""


class EvalappConnectionError(EvalappError):
    """The server could not be reached or did not answer in time (no HTTP status)."""


class JobTimeoutError(TimeoutError):
    """`Job.wait()` gave up; `job` holds the progress seen last (the job itself keeps running on the server)."""

    def __init__(self, message: str, job: Any):
        super().__init__(message)
        self.job = job


_BY_STATUS: dict[int, type[EvalappError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
}


def parse_field_errors(raw: Any) -> list[FieldError]:
    """Our API sends `[{"field", "message"}]`; DRF's own validation sends `{field: [messages]}`. Accept both."""
    if isinstance(raw, list):
        found = []
        for item in raw:
            if isinstance(item, dict) and "message" in item:
                found.append(FieldError(str(item.get("field", "")), str(item["message"])))
            else:
                found.append(FieldError("", str(item)))
        return found
    if isinstance(raw, dict):
        found = []
        for field, messages in raw.items():
            for message in messages if isinstance(messages, list) else [messages]:
                found.append(FieldError(str(field), str(message)))
        return found
    return []


def error_for(status_code: int, body: Any, text: str, *, method: str, path: str) -> EvalappError:
    """The exception for a 4xx/5xx answer. `body` is the decoded JSON (None if it wasn't JSON), `text` the raw body."""
    errors: list[FieldError] = []
    if isinstance(body, dict):
        detail = str(body.get("detail") or "").strip()
        errors = parse_field_errors(body.get("errors"))
        if not detail and errors:
            detail = f"{errors[0].field}: {errors[0].message}"
    else:
        detail = " ".join(text.split())[:300]  # an HTML error page or a proxy's message
    if not detail:
        detail = "the server gave no explanation"
    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else EvalappError)
    return cls(detail, status_code=status_code, errors=errors, method=method, path=path)
