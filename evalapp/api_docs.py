"""OpenAPI documentation of the JSON API: request/response schemas and examples for every endpoint, attached
to the API views from here (drf-spectacular's extend_schema_view), so the views stay readable."""

from __future__ import annotations
