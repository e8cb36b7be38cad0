"""OpenAPI building blocks every API area shares: the error body and its status codes, and the path parameters
that name an experiment, a trace or a conversation. Documentation only: nothing here parses a request."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Path of the offending field, e.g. `traces[3].spans[0].start_time`.")
    message = serializers.CharField(help_text="What is wrong and what to do about it.")


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence a person can act on (the first problem, with a count of the rest).")
    errors = FieldErrorSerializer(many=True, required=False, help_text="Every problem found, each with its field.")


ERROR_DESCRIPTIONS = {
    400: "Invalid request: `errors` names each offending field. Nothing was changed.",
    401: "Missing, invalid or revoked API token (or no login session).",
    403: "The account is a viewer: it can read but not change judges, model endpoints or runs.",
    404: "No such object.",
    409: "The object's state doesn't allow this now (e.g. predictions for a run that is already judging); the message says which.",
    410: "The experiment is being deleted: its traces are refused and it is gone from every list (the body says how far the deletion is).",
    413: "The body (or the gzip-inflated body) is over `EVALAPP_MAX_BODY_BYTES`; the message says the limit.",
    415: "A content type or content encoding the endpoint doesn't read.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The shared error body for these status codes (401 is added everywhere: every endpoint needs a token)."""
    return {code: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in sorted({401, *codes})}


def path_int(name: str, description: str, example: int = 1) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.INT, OpenApiParameter.PATH, required=True, description=description,
        examples=[OpenApiExample(name, value=example)],
    )


def path_str(name: str, description: str, example: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.PATH, required=True, description=description,
        examples=[OpenApiExample(name, value=example)],
    )


EXPERIMENT_ID = path_int("experiment_id", "The experiment's id.")
TRACE_ID = path_str("trace_id", "The trace's id (unique across experiments).", "tr-7f3a9c")
SESSION_ID = path_str("session_id", "The conversation's `session_id`.", "conversation-123")
