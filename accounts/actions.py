from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from accounts.models import ApiToken, hash_token


@transaction.atomic
def create_api_token(user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the raw token, which is never retrievable again."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name=name.strip() or "default", token_hash=hash_token(raw), prefix=raw[:10])
    return token, raw


def token_in_use(raw: str) -> ApiToken | None:
    """The live token `raw` is (not revoked, its user active), its use recorded; None if it is no such token. For
    callers outside DRF (the OTLP/gRPC receiver reads it from the `authorization` metadata): here rather than in
    accounts.auth, whose DRF and drf-spectacular imports would cost that process ~25 MiB (design note 47)."""
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    token.touch()
    return token
