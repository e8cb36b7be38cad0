"""JSON API for a judge's shadow version: start, read, promote, discard, and the diff (judges.shadow)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from judges import shadow as shadows
from judges import shadow_schema
from judges.api import EditorAPIView, _config_error, _judge, _object
from judges.errors import ConfigError

START_FIELDS = ("instructions", *[name for name in shadows.SHADOW_FIELDS if name != "instructions"])


def _not_found(judge) -> Response:
    return Response({"detail": f"{judge.name} has no shadow version; start one with POST …/shadow"}, status=status.HTTP_404_NOT_FOUND)


@shadow_schema.shadow
class ShadowView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        found = shadows.shadow_stats([judge]).get(judge.pk)
        return Response(found.as_json()) if found else _not_found(judge)

    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        data = _object(request, START_FIELDS)
        if isinstance(data, Response):
            return data
        if not isinstance(data.get("instructions"), str) or not data["instructions"].strip():
            return _config_error(ConfigError({"instructions": "is required: the candidate's instructions"}))
        try:
            started = shadows.start_shadow(judge, by=request.user, **data)
        except ConfigError as error:
            return _config_error(error)
        return Response(shadows.stats_of([started])[judge.pk].as_json(), status=status.HTTP_201_CREATED)


@shadow_schema.promote
class ShadowPromoteView(EditorAPIView):
    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        running = shadows.current_shadow(judge)
        if running is None:
            return _not_found(judge)
        try:
            live = shadows.promote_shadow(judge, by=request.user)
        except ConfigError as error:
            return _config_error(error)
        return Response({"promoted": running.version, "version": live.version})


@shadow_schema.discard
class ShadowDiscardView(EditorAPIView):
    def post(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        if shadows.current_shadow(judge) is None:
            return _not_found(judge)
        discarded = shadows.discard_shadow(judge, by=request.user)
        return Response(shadows.stats_of([discarded])[judge.pk].as_json())


@shadow_schema.diff
class ShadowDiffView(EditorAPIView):
    def get(self, request: Request, experiment_id: int, name: str) -> Response:
        judge = _judge(experiment_id, name)
        page, version = request.query_params.get("page", "1"), request.query_params.get("version")
        errors = {}
        if not page.isdigit() or not 1 <= int(page) <= 100_000:
            errors["page"] = "a page number from 1"
        if version is not None and not (version.isdigit() and int(version) <= 1_000_000):
            errors["version"] = "a shadow version's number"
        if errors:
            return _config_error(ConfigError(errors))
        found = shadows.shadow_for_diff(judge, int(version) if version else None)
        if found is None:
            if version:
                return Response({"detail": f"{judge.name} has no shadow version {version}"}, status=status.HTTP_404_NOT_FOUND)
            return _not_found(judge)
        return Response(shadows.shadow_diff(judge, found, page=int(page)).as_json())
