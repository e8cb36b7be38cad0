"""Secrets at rest (model API keys): Fernet, with the keys in EVALAPP_ENCRYPTION_KEYS: the first encrypts, all decrypt.

Before EVALAPP_ENCRYPTION_KEYS, the key was derived from EVALAPP_SECRET_KEY (else SECRET_KEY), with old ones in
EVALAPP_SECRET_KEY_FALLBACKS. Those derived keys still decrypt, and the first of them still encrypts while
EVALAPP_ENCRYPTION_KEYS is unset, so nothing stored becomes unreadable and a deployment that sets nothing new
keeps working. Last of all, the key derived from the development SECRET_KEY decrypts (never encrypts): it was the
default until settings began refusing it with DEBUG off, so installations that ran on it have secrets under it.

Rotation: put a new key first in EVALAPP_ENCRYPTION_KEYS, keep the old ones after it, run `manage.py
rotate_secrets` (it re-encrypts every stored key with the first), then drop the old ones.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

logger = logging.getLogger(__name__)
_warned_about_development_key = False


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key we no longer have."""


def _derived(raw_key: str) -> bytes:
    digest = hashlib.sha256(("evalapp-secrets:" + raw_key).encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _keys() -> list[bytes]:
    """The configured keys, the encrypting one first."""
    legacy = [key for key in [settings.EVALAPP_SECRET_KEY, *settings.EVALAPP_SECRET_KEY_FALLBACKS, settings.SECRET_KEY] if key]
    keys = [key.encode() for key in settings.EVALAPP_ENCRYPTION_KEYS] + [_derived(key) for key in legacy]
    return list(dict.fromkeys(keys))


def _development_key() -> bytes | None:
    """The key derived from the development SECRET_KEY, unless it is configured anyway (DEBUG on, no SECRET_KEY)."""
    development = getattr(settings, "DEV_SECRET_KEY", "")
    key = _derived(development) if development else None
    return None if key is None or key in _keys() else key


def _multi(keys: list[bytes]) -> MultiFernet:
    # Imported here: judges.models imports this module, so every process would load cryptography (~10 MiB) at start
    # while only those that store or call an endpoint need it (design note 47).
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _multi(_keys()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    from cryptography.fernet import Fernet, InvalidToken

    if not token:
        return ""
    try:
        return _multi(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        pass
    development = _development_key()
    if development is not None:
        try:
            plaintext = Fernet(development).decrypt(token.encode()).decode()
        except InvalidToken:
            pass
        else:
            _warn_about_development_key()
            return plaintext
    raise SecretUnreadable(
        "The stored API key can't be decrypted with any key in EVALAPP_ENCRYPTION_KEYS (or the older "
        "EVALAPP_SECRET_KEY, its fallbacks, SECRET_KEY); enter the key again."
    )


def rotate(token: str) -> str:
    """Re-encrypt with the current key."""
    from cryptography.fernet import InvalidToken

    if not token:
        return ""
    development = _development_key()
    try:
        return _multi(_keys() + ([development] if development else [])).rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("A stored secret can't be decrypted with any configured key.") from None


def _warn_about_development_key() -> None:
    global _warned_about_development_key
    if not _warned_about_development_key:
        _warned_about_development_key = True
        logger.warning(
            "A stored API key is encrypted with the development SECRET_KEY, which is public; run "
            "`python manage.py rotate_secrets` to re-encrypt stored keys with the current key."
        )
