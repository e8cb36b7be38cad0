from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from judges import secrets
from judges.models import ModelEndpoint


class Command(BaseCommand):
    help = (
        "Re-encrypt stored API keys with the current key, the first of EVALAPP_ENCRYPTION_KEYS. Put the new key "
        "first, keep the old ones after it, run this, then remove the old ones."
    )

    def handle(self, *args, **options):
        rotated = 0
        with transaction.atomic():
            for endpoint in ModelEndpoint.objects.select_for_update().exclude(api_key_encrypted=""):
                try:
                    endpoint.api_key_encrypted = secrets.rotate(endpoint.api_key_encrypted)
                except secrets.SecretUnreadable:
                    raise CommandError(
                        f"The API key of endpoint {endpoint.name!r} can't be decrypted with the current key or any "
                        "fallback; nothing was changed."
                    ) from None
                endpoint.save(update_fields=["api_key_encrypted"])
                rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} API key(s) with the current key.")
