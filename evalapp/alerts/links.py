"""Where an alert points: the Traces tab filtered to its window, as a path or (for notifications) a full address."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from evalapp.models import AlertRule


def traces_link(rule: AlertRule, start: datetime, end: datetime) -> str:
    """The Traces tab, filtered to the window's traces."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    query = urlencode({"q": f"trace.timestamp_ms >= {start_ms} AND trace.timestamp_ms < {end_ms}"})
    return f"{reverse('experiment-traces', args=[rule.experiment_id])}?{query}"


def absolute(path: str) -> str:
    return settings.EVALAPP_BASE_URL.rstrip("/") + path
