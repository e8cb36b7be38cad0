"""Model API keys at rest: encrypted with EVALAPP_ENCRYPTION_KEYS (the first encrypts, all decrypt), rotated by
`manage.py rotate_secrets`, and keys stored the older ways stay readable."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from judges import secrets
from judges.endpoint_actions import create_endpoint
from judges.models import ModelEndpoint

API_KEY = "sk-live-0123456789abcdef"
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()

pytestmark = pytest.mark.django_db


def stored_endpoint() -> ModelEndpoint:
    endpoint = create_endpoint(name="gpt", model="openai/gpt-4.1-mini", api_key=API_KEY)
    return ModelEndpoint.objects.get(pk=endpoint.pk)


def reread(endpoint: ModelEndpoint) -> str:
    return ModelEndpoint.objects.get(pk=endpoint.pk).get_api_key()


def rotate() -> str:
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    return out.getvalue()


def test_the_first_encryption_key_encrypts_and_rotation_moves_every_key_to_a_new_one(settings):
    settings.EVALAPP_ENCRYPTION_KEYS = [OLD]
    endpoint = stored_endpoint()
    assert Fernet(OLD.encode()).decrypt(endpoint.api_key_encrypted.encode()).decode() == API_KEY

    settings.EVALAPP_ENCRYPTION_KEYS = [NEW, OLD]  # the new key first, the old one still decrypts
    assert reread(endpoint) == API_KEY
    assert "Re-encrypted 1 API key(s)" in rotate()

    settings.EVALAPP_ENCRYPTION_KEYS = [NEW]  # the old key dropped: still readable
    assert reread(endpoint) == API_KEY
    settings.EVALAPP_ENCRYPTION_KEYS = [OLD]  # and no longer under the old key
    with pytest.raises(secrets.SecretUnreadable, match="EVALAPP_ENCRYPTION_KEYS"):
        reread(endpoint)


def test_keys_stored_before_encryption_keys_were_set_stay_readable_and_rotate_to_them(settings):
    settings.EVALAPP_ENCRYPTION_KEYS = []
    settings.EVALAPP_SECRET_KEY = "the-old-evalapp-secret-key"
    endpoint = stored_endpoint()

    settings.EVALAPP_ENCRYPTION_KEYS = [NEW]
    assert reread(endpoint) == API_KEY
    rotate()
    settings.EVALAPP_SECRET_KEY = ""
    assert Fernet(NEW.encode()).decrypt(ModelEndpoint.objects.get(pk=endpoint.pk).api_key_encrypted.encode()).decode() == API_KEY


def test_keys_stored_under_the_development_secret_key_stay_readable_until_rotated(settings, caplog, monkeypatch):
    settings.EVALAPP_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = settings.DEV_SECRET_KEY  # what an installation without SECRET_KEY ran on
    endpoint = stored_endpoint()

    settings.SECRET_KEY = "a-real-secret-key-at-last-0123456789"
    monkeypatch.setattr(secrets, "_warned_about_development_key", False)  # it warns once per process
    with caplog.at_level(logging.WARNING, logger="judges.secrets"):
        assert reread(endpoint) == API_KEY
    assert "encrypted with the development SECRET_KEY" in caplog.text and "rotate_secrets" in caplog.text
    rotate()
    settings.DEV_SECRET_KEY = ""  # as if the development key could no longer decrypt anything
    assert reread(endpoint) == API_KEY


def test_rotation_changes_nothing_when_a_key_is_unreadable(settings):
    settings.EVALAPP_ENCRYPTION_KEYS = [OLD]
    readable = stored_endpoint()
    before = readable.api_key_encrypted
    ModelEndpoint.objects.create(name="lost", model="openai/x", api_key_encrypted=Fernet(Fernet.generate_key()).encrypt(b"k").decode())
    settings.EVALAPP_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(CommandError, match="'lost' can't be decrypted"):
        rotate()
    assert ModelEndpoint.objects.get(pk=readable.pk).api_key_encrypted == before
