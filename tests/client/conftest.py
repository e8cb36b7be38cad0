"""The client against a live server: pytest-django's `live_server` (a real HTTP server in a thread of this process,
on the test database), so every call goes through httpx, the URLconf, token auth and the JSON renderer."""

from __future__ import annotations

import pytest
from django_q.conf import Conf

from accounts.actions import create_api_token
from evalapp_client import Client


@pytest.fixture
def sync_tasks(monkeypatch):
    """Background tasks run inline (django-q2's sync mode), so judging is finished when the request that queued
    it returns. `Conf` is read at import: patch it, not the settings."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def queued_tasks(monkeypatch):
    """Tasks go to the broker and stay there: no worker runs in these tests."""
    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def client(live_server, token):
    """An editor's `evalapp_client.Client` (here it replaces pytest-django's Django test `client`)."""
    with Client(live_server.url, token=token, timeout=30) as c:
        yield c


@pytest.fixture
def viewer_client(live_server, viewer):
    """A viewer's `evalapp_client.Client` (here it replaces tests/conftest.py's logged-in Django test client)."""
    _, raw = create_api_token(viewer, "viewer client")
    with Client(live_server.url, token=raw) as c:
        yield c


@pytest.fixture
def exp(client, experiment):
    """The `experiment` fixture ("checkout-agent") as the client sees it."""
    return client.get_experiment(experiment.pk)
