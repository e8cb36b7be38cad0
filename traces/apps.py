from __future__ import annotations

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        from traces import filter_sql, like

        def fold_case(value):
            return like.fold_case(value) if isinstance(value, str) else value

        connection.connection.create_function(filter_sql.FOLD_CASE_FUNCTION, 1, fold_case, deterministic=True)


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Traces"

    def ready(self) -> None:
        from django.conf import settings

        from traces import filters

        filters.LIMITS = filters.FilterLimits(
            max_length=settings.EVALAPP_FILTER_MAX_LENGTH,
            max_conditions=settings.EVALAPP_FILTER_MAX_CONDITIONS,
            max_depth=settings.EVALAPP_FILTER_MAX_DEPTH,
            max_like_length=settings.EVALAPP_FILTER_MAX_LIKE_LENGTH,
            max_like_wildcards=settings.EVALAPP_FILTER_MAX_LIKE_WILDCARDS,
        )
        connection_created.connect(_register_sqlite_functions, dispatch_uid="traces.sqlite_functions")
