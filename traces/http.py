"""What a request may hold: body size limits (413), chunked bodies and gzip/deflate for ingestion, the strict JSON parser every
API view reads its body with, and no NUL characters in URLs."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from traces import strict_json


class BodyError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def _human_bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB"
    if count >= 1024:
        return f"{count / 1024:g} KiB"
    return f"{count} bytes"


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, inflated if gzip/deflate-encoded. Larger than `limit` (before or after inflating) → 413."""
    too_large = BodyError(
        413,
        f"Request body is larger than the limit of {_human_bytes(limit)}; send smaller batches "
        "(the limit is EVALAPP_MAX_BODY_BYTES).",
    )
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise BodyError(400, "Content-Length is not a number.") from None
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not declared and not isinstance(request, ASGIRequest):  # ASGI: Django has read the whole body
        raw = _read_chunked_wsgi(request, limit + 1)
    else:
        raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none.")
    return _inflate(raw, encoding, limit, too_large)


def _inflate(raw: bytes, encoding: str, limit: int, too_large: BodyError) -> bytes:
    """The whole body or a 400, never part of it: one complete gzip (or deflate) stream and nothing after it.
    RFC 1952 allows several gzip members, but no HTTP client we know sends them, and reading them one by one
    copies the rest of the body for each (quadratic in a body of many empty members)."""
    name = "gzip" if encoding in ("gzip", "x-gzip") else "deflate"
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise BodyError(400, f"Body is not valid {name} data ({error}).") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_large
    if not inflater.eof:
        raise BodyError(400, f"Body ends before the end of its {name} stream (truncated?); nothing was stored.")
    if inflater.unused_data:
        raise BodyError(
            400,
            f"Body has {len(inflater.unused_data)} bytes after the end of its {name} stream; send one {name} stream"
            f"{' (one member)' if name == 'gzip' else ''} and nothing after it; nothing was stored.",
        )
    return body


def _read_chunked_wsgi(request: HttpRequest, most: int) -> bytes:
    """A body with no Content-Length (Transfer-Encoding: chunked), up to `most` bytes. Django reads such a WSGI
    body as empty, so it is read here from the server's stream — where the server ends that stream at the end of
    the body (`wsgi.input_terminated`, as gunicorn does); elsewhere (Django's development server) it is a 411."""
    if not request.META.get("wsgi.input_terminated"):
        raise BodyError(411, "This server can't read a chunked body (Transfer-Encoding: chunked); send Content-Length.")
    stream = request.META["wsgi.input"]
    pieces: list[bytes] = []
    count = 0
    while count < most:
        piece = stream.read(min(64 * 1024, most - count))
        if not piece:
            break
        pieces.append(piece)
        count += len(piece)
    return b"".join(pieces)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, through traces.strict_json: NaN, Infinity, 1e400, NUL and lone surrogates are a 400 that
    names the problem, not a server error when the value reaches the database."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return strict_json.loads(stream.read().decode(encoding))
        except ValueError as error:  # UnicodeDecodeError too
            raise ParseError(strict_json.body_error(error)) from None


class RefuseNulInUrlMiddleware:
    """A URL whose path or query string holds a NUL (%00) is a 400. PostgreSQL refuses NUL in text, so any lookup
    with it would be a server error there, and no name, id or filter evalapp stores can hold one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        in_query = any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())
        if "\x00" in request.path or in_query:
            where = "path" if "\x00" in request.path else "query string"
            message = f"The URL's {where} holds a NUL character (%00); no name, id or filter can contain one."
            return JsonResponse({"detail": message}, status=400)
        return self.get_response(request)
