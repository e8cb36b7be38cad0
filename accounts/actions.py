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
