"""Secrets at rest (model API keys): Fernet with a key derived from EVALAPP_SECRET_KEY (else SECRET_KEY).

Rotation: put the new key in EVALAPP_SECRET_KEY, the old one(s) in EVALAPP_SECRET_KEY_FALLBACKS (comma-separated),
run `manage.py rotate_secrets`, then drop the fallbacks.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key we no longer have."""


def _fernet(raw_key: str) -> Fernet:
    digest = hashlib.sha256(("evalapp-secrets:" + raw_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> list[str]:
    current = settings.EVALAPP_SECRET_KEY or settings.SECRET_KEY
    fallbacks = [key for key in getattr(settings, "EVALAPP_SECRET_KEY_FALLBACKS", []) if key]
    return [current, *fallbacks]


def _multi() -> MultiFernet:
    return MultiFernet([_fernet(key) for key in _keys()])


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _multi().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _multi().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "The stored API key can't be decrypted with the current EVALAPP_SECRET_KEY (or its fallbacks); "
            "enter the key again."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt with the current key."""
    if not token:
        return ""
    try:
        return _multi().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("A stored secret can't be decrypted with any configured key.") from None
