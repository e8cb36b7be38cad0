"""Reading request bodies for ingestion: size limits (413) and gzip/deflate, before anything is parsed."""

from __future__ import annotations

import zlib

from django.http import HttpRequest


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
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none.")
    window = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(window)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise BodyError(400, f"Body is not valid {encoding} data ({error}).") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_large
    return body
