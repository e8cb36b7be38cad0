"""Shared API plumbing: every error is JSON with a `detail` a person can act on."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from traces.payload import PayloadError


def _field_errors(data: Any, path: str = "") -> list[tuple[str, str]]:
    """DRF's `{field: [messages]}` (nested for nested serializers, lists for many=True) as (path, message) pairs,
    with paths written like the ingest API's (`traces[3].spans[0].start_time`)."""
    if isinstance(data, dict):
        found = []
        for key, value in data.items():
            key = "" if key == api_settings.NON_FIELD_ERRORS_KEY else str(key)
            found += _field_errors(value, f"{path}.{key}" if path and key else path or key)
        return found
    if isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            return [(path, str(message)) for message in data]
        found = []
        for index, item in enumerate(data):
            found += _field_errors(item, f"{path}[{index}]")
        return found
    return [(path, str(data))]


def exception_handler(exc, context):
    """DRF's handler, with validation errors in the shape every other API error has:
    `{"detail": "name: This field may not be blank.", "errors": [{"field": "name", "message": ...}]}`."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        errors = _field_errors(response.data) or [("", "Invalid request.")]
        body = PayloadError(errors).as_json()
        if not errors[0][0]:  # no field to name: the message on its own
            body["detail"] = body["detail"].removeprefix(": ")
        response.data = body
    elif not isinstance(response.data, dict) or "detail" not in response.data:
        errors = _field_errors(response.data)
        response.data = {"detail": "Invalid request.", "errors": [{"field": field, "message": message} for field, message in errors]}
    return response
