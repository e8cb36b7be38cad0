"""GET /api/v1/experiments/<id>/overview — the aggregates the Overview tab draws, as JSON (see evalapp.overview)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class OverviewView(APIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        return Response({"detail": "not built yet"}, status=501)
