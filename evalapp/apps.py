from __future__ import annotations

from django.apps import AppConfig


class EvalappConfig(AppConfig):
    name = "evalapp"
    verbose_name = "evalapp"
