"""A stored API key never follows an endpoint to a server its owner didn't give it to, and the server's own keys
(OPENAI_API_KEY…) go only to the provider's own address, on an admin's say-so."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges.endpoint_actions import check_connection, create_endpoint, update_endpoint
from judges.errors import ConfigError
from judges.models import ModelEndpoint
from standin.server import StandinConfig, StandinLLM
from tests.conftest import STANDIN_KEY

pytestmark = pytest.mark.django_db

SERVER_SECRET = "sk-server-environment-secret-9f8e7d"


@pytest.fixture
def attacker():
    """A server of the editor's own that records what arrives (it accepts any key)."""
    server = StandinLLM(StandinConfig()).start()
    yield server
    server.stop()


def authorization_headers(server) -> list[str]:
    return [request["headers"].get("authorization", request["headers"].get("Authorization", "")) for request in server.requests]


def test_moving_an_endpoint_to_another_address_drops_its_key(client, user, endpoint, attacker):
    client.force_login(user)
    data = {"name": endpoint.name, "model": endpoint.model, "api_base": attacker.api_base, "timeout_seconds": "5", "max_retries": "0",
            "max_concurrency": "8", "output_mode": "auto", "inference_params": ""}
    client.post(reverse("endpoint-edit", args=[endpoint.pk]), data)
    endpoint.refresh_from_db()
    assert not endpoint.has_api_key
    assert "stored API key of Stand-in (test) was removed" in client.get(reverse("endpoint-list")).content.decode()
    client.post(reverse("endpoint-test", args=[endpoint.pk]))  # the "Test connection" button
    assert attacker.requests and not any(STANDIN_KEY in header for header in authorization_headers(attacker))


def test_a_new_address_with_a_new_key_keeps_the_new_key(endpoint, attacker):
    update_endpoint(endpoint, api_base=attacker.api_base, api_key="sk-the-key-for-the-new-address")
    assert endpoint.get_api_key() == "sk-the-key-for-the-new-address" and not endpoint.key_dropped


def test_changing_the_provider_drops_the_key(endpoint):
    update_endpoint(endpoint, model="anthropic/claude-sonnet-4-5")
    assert not ModelEndpoint.objects.get(pk=endpoint.pk).has_api_key


def test_a_keyless_endpoint_never_sends_the_servers_own_key(monkeypatch, attacker, db):
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_SECRET)
    keyless = create_endpoint(name="mine", model="openai/gpt-4.1-mini", api_base=attacker.api_base, max_retries=0, timeout_seconds=5)
    ok, _ = check_connection(keyless)
    assert ok and attacker.requests
    assert not any(SERVER_SECRET in header for header in authorization_headers(attacker))


def test_only_an_admin_may_use_the_servers_keys_and_only_at_the_providers_address(db):
    with pytest.raises(ConfigError) as refused:
        create_endpoint(name="env", model="openai/gpt-4.1-mini", use_server_key=True)
    assert "only an admin" in refused.value.errors["use_server_key"]
    with pytest.raises(ConfigError) as elsewhere:
        create_endpoint(name="env", model="openai/gpt-4.1-mini", api_base="http://127.0.0.1:9/v1", use_server_key=True, allow_server_key=True)
    assert "provider's own address" in elsewhere.value.errors["use_server_key"]
    endpoint = create_endpoint(name="env", model="openai/gpt-4.1-mini", use_server_key=True, allow_server_key=True)
    assert endpoint.key_for_call() == ""  # litellm reads the server's environment key, for api.openai.com only
    with pytest.raises(ConfigError):
        update_endpoint(endpoint, api_base="http://127.0.0.1:9/v1")  # can't then be pointed elsewhere


def test_the_api_refuses_server_keys_to_an_editor(api, db):
    response = api.post("/api/v1/endpoints", {"name": "env", "model": "openai/gpt-4.1-mini", "use_server_key": True}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "use_server_key"
    assert not ModelEndpoint.objects.exists()
