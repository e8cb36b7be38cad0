from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "ea_"
# Recording every use would turn every API read into a write; once a minute is enough to answer "is it used?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token itself is shown once, when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a person can tell tokens apart without seeing them.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def touch(self) -> None:
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class OverviewHour(models.Model):
    """One UTC hour of an experiment's Overview numbers, summed from the raw rows (evalapp.rollups).

    `version` goes up with every write that changes what the hour holds (ingest, a verdict, feedback);
    `computed_version` is the version `data` was computed at, so the hour is fresh while the two are equal.
    A row made by a computation starts at version 0, one made by a write at 1 (then `data` is None)."""

    experiment = models.ForeignKey("traces.Experiment", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # the hour's start, UTC
    version = models.PositiveIntegerField(default=1)
    computed_version = models.PositiveIntegerField(default=0)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "hour"], name="overview_hour_unique")]

    def __str__(self) -> str:
        state = "fresh" if self.computed_version == self.version else "stale"
        return f"{self.hour:%Y-%m-%d %H:00} UTC of experiment {self.experiment_id} ({state})"
