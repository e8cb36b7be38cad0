"""The HTTP layer under `Client`: JSON in and out, errors turned into `EvalappError`s, keyset pages followed."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from evalapp_client.errors import EvalappConnectionError, EvalappError, error_for

__version__ = "0.1.0"

MAX_PAGE_SIZE = 500  # the server's limit per page
GZIP_ABOVE_BYTES = 256 * 1024
# A 503 that says when to come back (Retry-After) is the server's "busy, nothing was written" (ingest slots all
# taken, the database's locks held past their bound, the database down): the request is sent again after the wait,
# up to this many times and this many seconds of waiting in all, then the error is raised. (A 429 is not retried:
# evalapp sends it for failed logins and bad tokens, which waiting does not mend.)
BUSY_RETRIES = 5
BUSY_WAIT_LIMIT_SECONDS = 60.0


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The wait a 503 asks for, in seconds (Retry-After's delta-seconds form, the one evalapp sends); None if it asks
    for none."""
    if response.status_code != 503:
        return None
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(body: Any) -> bytes:
    """JSON, with datetimes as ISO 8601 and Decimals as strings (as the API writes them)."""
    return json.dumps(body, default=_json_default, ensure_ascii=False).encode()


class Http:
    """One httpx connection pool with the token set once. The token is kept only in httpx's headers: not in an
    attribute, a repr or a message."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout,
        headers: dict[str, str] | None,
        transport: httpx.BaseTransport | None,
        verify: bool | str,
    ):
        self.base_url = base_url
        self._client = httpx.Client(
            base_url=base_url,
            headers={
                **(headers or {}),
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"evalapp-client/{__version__}",
            },
            timeout=timeout,
            transport=transport,
            verify=verify,
        )

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        compress: bool = False,
        raw: bytes | None = None,
        content_type: str = "",
    ) -> Any:
        """The decoded JSON answer (None for 204). Raises EvalappError for 4xx/5xx and unreachable servers.
        `params` left None are not sent; `compress` gzips a body over 256 KiB (the ingest endpoint reads gzip);
        `raw` is sent as it is, as `content_type` (an uploaded file)."""
        headers: dict[str, str] = {}
        content: bytes | None = None
        if raw is not None:
            content = raw
            headers["Content-Type"] = content_type
        elif body is not None:
            content = dumps(body)
            headers["Content-Type"] = "application/json"
            if compress and len(content) > GZIP_ABOVE_BYTES:
                content = gzip.compress(content, compresslevel=5)
                headers["Content-Encoding"] = "gzip"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        response = self._send(method, path, params=query or None, content=content, headers=headers)
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            raise error_for(response.status_code, answer, response.text, method=method, path=path)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise EvalappError(
                f"the answer is not JSON (Content-Type {response.headers.get('content-type')!r}); is {self.base_url} an evalapp server?",
                status_code=response.status_code,
                method=method,
                path=path,
            ) from None

    def _send(self, method: str, path: str, **arguments: Any) -> httpx.Response:
        """One request, sent again while the server answers busy with a Retry-After (see BUSY_RETRIES)."""
        waited = 0.0
        for _ in range(BUSY_RETRIES):
            response = self._send_once(method, path, **arguments)
            wait = retry_after_seconds(response)
            if wait is None or waited + wait > BUSY_WAIT_LIMIT_SECONDS:
                return response
            time.sleep(wait)
            waited += wait
        return self._send_once(method, path, **arguments)  # the last try: whatever it answers

    def _send_once(self, method: str, path: str, **arguments: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **arguments)
        except httpx.TimeoutException as error:
            raise EvalappConnectionError(
                f"no answer from {self.base_url} in time ({type(error).__name__}); raise Client(timeout=...) or try again",
                method=method,
                path=path,
            ) from error
        except httpx.TransportError as error:
            raise EvalappConnectionError(f"could not reach {self.base_url}: {error}", method=method, path=path) from error

    def download(self, path: str, params: dict[str, Any], into: Any) -> int:
        """Stream a GET answer's bytes into the binary file `into`, a piece at a time; returns how many were written.
        Errors are raised as for `request` (the body of a 4xx is read to say what was wrong)."""
        query = {key: value for key, value in params.items() if value is not None}
        try:
            with self._client.stream("GET", path, params=query or None) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    raise error_for(response.status_code, answer, response.text, method="GET", path=path)
                written = 0
                for piece in response.iter_bytes():
                    into.write(piece)
                    written += len(piece)
                return written
        except httpx.TimeoutException as error:
            raise EvalappConnectionError(f"no answer from {self.base_url} in time ({type(error).__name__})", method="GET", path=path) from error
        except httpx.TransportError as error:
            raise EvalappConnectionError(f"could not reach {self.base_url}: {error}", method="GET", path=path) from error

    def pages(self, path: str, key: str, params: dict[str, Any], max_results: int | None, page_size: int) -> Iterator[dict[str, Any]]:
        """The rows under `key`, page after page (following `next_cursor`), fetched as they are consumed."""
        if max_results is not None and max_results < 0:
            raise ValueError("max_results must be ≥ 0, or None for all")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        remaining = max_results
        cursor: str | None = None
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            data = self.request("GET", path, params={**params, "page_size": size, "cursor": cursor})
            rows = data[key]
            if remaining is not None:
                rows = rows[:remaining]
                remaining -= len(rows)
            yield from rows
            cursor = data.get("next_cursor")
            if not cursor:
                return
