"""Settings for evalapp. Everything that differs between machines comes from environment variables.

The defaults are the embedded setup: SQLite in ./var and django-q2's ORM broker, so a fresh checkout runs with
nothing else installed. DATABASE_URL (PostgreSQL) and REDIS_URL switch to the scale-out setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly

from evalapp.envconf import (
    LOG_LEVELS,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    sqlite_database,
)

# litellm fetches its model price map from the Internet at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALAPP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# A development key only; deployments set SECRET_KEY. Never used for secrets at rest when EVALAPP_SECRET_KEY is set.
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me-4b1d2c0e9a7f")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "template_partials",
    "evalapp",
    "traces",
    "judges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "traces.http.RefuseNulInUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "evalapp.urls"
WSGI_APPLICATION = "evalapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "evalapp.context_processors.roles",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", "")
if _database_url:
    DATABASES = {"default": database_from_url(_database_url)}
else:
    DATABASES = {
        "default": sqlite_database(
            str(VAR_DIR / "evalapp.sqlite3"),
            # A file, not :memory:, so server and worker processes started by tests can share the test database;
            # per process, so two test runs on one machine don't trample each other.
            test_path=str(VAR_DIR / f"test-evalapp-{os.getpid()}.sqlite3"),
        )
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# plotly.js comes from the pinned plotly package (no CDN, nothing to vendor by hand): {% static 'vendor/plotly/plotly.min.js' %}
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", Path(plotly.__file__).parent / "package_data")]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "experiment-list"
LOGOUT_REDIRECT_URL = "login"

# Ingestion: one limit for the request body, compressed or not (a gzip body is also limited once inflated).
EVALAPP_MAX_BODY_BYTES = env_int("EVALAPP_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
EVALAPP_MAX_TRACES_PER_REQUEST = env_int("EVALAPP_MAX_TRACES_PER_REQUEST", 1000, minimum=1)
# Django refuses bigger form bodies with a bare 400; our ingest views answer 413 themselves before reading.
DATA_UPLOAD_MAX_MEMORY_SIZE = EVALAPP_MAX_BODY_BYTES + 1024
EVALAPP_SESSION_IDLE_SECONDS = env_int("EVALAPP_SESSION_IDLE_SECONDS", 300, minimum=1)
# How long a worker's claim on judging work lasts without a heartbeat; a killed worker's work is reclaimed after it.
EVALAPP_LEASE_SECONDS = env_int("EVALAPP_LEASE_SECONDS", 60, minimum=3)
# A judging task keeps taking pending work for up to this long, with this many model calls in flight.
EVALAPP_DRAIN_SECONDS = env_int("EVALAPP_DRAIN_SECONDS", 120, minimum=1)
EVALAPP_DRAIN_CONCURRENCY = env_int("EVALAPP_DRAIN_CONCURRENCY", 32, minimum=1, maximum=256)
EVALAPP_SECRET_KEY = env_str("EVALAPP_SECRET_KEY", "")
EVALAPP_SECRET_KEY_FALLBACKS = env_list("EVALAPP_SECRET_KEY_FALLBACKS", [])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evalapp.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Strict: NaN, Infinity, 1e400, NUL and lone surrogates are a 400 naming the problem (traces.strict_json).
    "DEFAULT_PARSER_CLASSES": ["traces.http.JSONParser"],
    "EXCEPTION_HANDLER": "evalapp.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# The OpenAPI schema (/api/schema/) and its docs page (/api/docs/) need a login or a token like everything else;
# the docs page's assets come from drf-spectacular-sidecar (our static files, no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "evalapp API",
    "DESCRIPTION": "Experiments, traces, sessions, LLM judges, model endpoints, assessments and overview aggregates. "
    "Authenticate with `Authorization: Token <token>` (create one with `python manage.py create_token <user>`). "
    "Errors are JSON: `{\"detail\": ..., \"errors\": [{\"field\": ..., \"message\": ...}]}`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Traces and spans both have a `status` with different choices; name the two enums instead of hashing them.
    "ENUM_NAME_OVERRIDES": {
        "TraceStatusEnum": "traces.models.TraceStatus",
        "SpanStatusEnum": "traces.models.SpanStatus",
    },
}

# django-q2 reads this once, at import. Tests switch to sync mode through EVALAPP_Q_SYNC, not override_settings.
REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER: dict = {
    "name": "evalapp",
    # The queue a cluster serves; the same "name" (it signs task payloads) with another queue keeps e.g. a test
    # run's workers apart from the demo's on one broker.
    "cluster_name": env_str("EVALAPP_Q_QUEUE", "evalapp"),
    "workers": env_int("EVALAPP_Q_WORKERS", 2, minimum=1),
    # A task may run this long; after `retry` seconds an unacknowledged task is handed out again.
    "timeout": env_int("EVALAPP_Q_TIMEOUT", 300, minimum=10),
    "retry": env_int("EVALAPP_Q_TIMEOUT", 300, minimum=10) + 60,
    "max_attempts": 3,
    "queue_limit": 50,
    "bulk": 10,
    "poll": 0.2,
    "save_limit": 1000,
    "ack_failures": True,
    "catch_up": False,
    "sync": env_bool("EVALAPP_Q_SYNC", False),
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOG_LEVEL = env_choice("EVALAPP_LOG_LEVEL", "INFO", LOG_LEVELS)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "evalapp": {"level": LOG_LEVEL},
        "traces": {"level": LOG_LEVEL},
        "judges": {"level": LOG_LEVEL},
        "django-q": {"level": env_choice("EVALAPP_Q_LOG_LEVEL", "WARNING", LOG_LEVELS)},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
