from __future__ import annotations

from django.apps import AppConfig


class StandinConfig(AppConfig):
    """The scripted stand-in model (standin.server) and its `manage.py standin_llm` command. It knows nothing of
    the rest of the project: it reads judge prompts the way any model would, from the HTTP request."""

    name = "standin"
    verbose_name = "Stand-in model"
