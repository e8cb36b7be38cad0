"""Settings for evalapp. Everything that differs between machines comes from environment variables.

The defaults are the embedded setup: SQLite in ./var and django-q2's ORM broker, so a fresh checkout runs with
nothing else installed. DATABASE_URL (PostgreSQL) and REDIS_URL switch to the scale-out setup.
"""

from __future__ import annotations

import os
from pathlib import Path

from evalapp.envconf import (
    LOG_LEVELS,
    database_from_url,
    env_bool,
    env_choice,
    env_fernet_keys,
    env_hosts,
    env_int,
    env_list,
    env_str,
    secret_key,
    sqlite_database,
)
from traces.filters import HIGHEST_LIMITS as HIGHEST_FILTER_LIMITS
from traces.filters import FilterLimits

# litellm fetches its model price map from the Internet at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALAPP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# Public, so accepted only with DEBUG on (envconf.secret_key); API keys stored under it earlier stay readable.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-4b1d2c0e9a7f"
SECRET_KEY = secret_key(debug=DEBUG, development_key=DEV_SECRET_KEY, key_file=VAR_DIR / "secret_key")
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
    "accounts",
    "evalapp",
    "traces",
    "judges",
    "datasets",
    "evaluations",
    "standin",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "evalapp.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "traces.http.RefuseNulInUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so its process_exception sees a view's exception first: a database that is down is a 503.
    "evalapp.middleware.DatabaseOutageMiddleware",
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
STATICFILES_DIRS = [BASE_DIR / "static"]  # plotly.js included: static/vendor/plotly/README.md says which build and why
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# `./run app` runs collectstatic: every file gets a content hash in its name, a .gz and a .br beside it, and whitenoise
# serves those names with a ten-year immutable cache. Without collectstatic (a test run, a bare `manage.py`), a page
# names the plain file and whitenoise serves it from the finders, uncompressed and briefly cached (evalapp.staticfiles).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "evalapp.staticfiles.StaticFiles"},
}
WHITENOISE_USE_FINDERS = True
# Pages link one stylesheet and one script, each the area files joined in order (evalapp/bundles.py), found like
# any other static file: collected and compressed by collectstatic, served from the finder without it.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "evalapp.bundles.BundleFinder",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "experiment-list"
LOGOUT_REDIRECT_URL = "login"

# Ingestion: one limit for the request body, compressed or not (a gzip body is also limited once inflated).
EVALAPP_MAX_BODY_BYTES = env_int("EVALAPP_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
EVALAPP_MAX_TRACES_PER_REQUEST = env_int("EVALAPP_MAX_TRACES_PER_REQUEST", 1000, minimum=1)
# Overload (traces.admission): at most this many ingest requests decode and write at once on this machine (every
# web worker and the gRPC receiver together; 0 refuses all ingest); more get a 503 with Retry-After at once. The
# default is the number of cores: ingest is CPU work in Python, more writers than cores only queue for the database.
EVALAPP_INGEST_WRITERS = env_int("EVALAPP_INGEST_WRITERS", max(2, os.cpu_count() or 2), minimum=0, maximum=1000)
# ... and an ingest waits at most this long for the database's write locks, then answers 503 too (an exporter's
# export times out after 10 s by default, retries included: a 503 after 5 s still leaves it time for a retry).
EVALAPP_INGEST_LOCK_WAIT_SECONDS = env_int("EVALAPP_INGEST_LOCK_WAIT_SECONDS", 5, minimum=1, maximum=300)
# The Retry-After of those 503s: short, since a writer frees its slot within a second or so.
EVALAPP_INGEST_RETRY_AFTER_SECONDS = env_int("EVALAPP_INGEST_RETRY_AFTER_SECONDS", 1, minimum=1, maximum=3600)
# OTLP over gRPC (`manage.py otlp_grpc`, started by `./run app` unless 0): the port it listens on.
EVALAPP_OTLP_GRPC_PORT = env_int("EVALAPP_OTLP_GRPC_PORT", 4317, minimum=0, maximum=65535)
# A dataset upload (CSV or JSON Lines, on the page or the API): larger files are refused with a 413.
EVALAPP_DATASET_MAX_UPLOAD_BYTES = env_int("EVALAPP_DATASET_MAX_UPLOAD_BYTES", 16 * 1024 * 1024, minimum=1024)
# Django refuses bigger form bodies with a bare 400; our ingest views answer 413 themselves before reading.
DATA_UPLOAD_MAX_MEMORY_SIZE = EVALAPP_MAX_BODY_BYTES + 1024
# The filter language: a judge's filter runs on every trace ingested, so one filter's work is bounded for everyone.
_default_filter_limits, _highest_filter_limits = FilterLimits(), HIGHEST_FILTER_LIMITS
EVALAPP_FILTER_MAX_LENGTH = env_int(
    "EVALAPP_FILTER_MAX_LENGTH", _default_filter_limits.max_length, minimum=100, maximum=_highest_filter_limits.max_length
)
EVALAPP_FILTER_MAX_CONDITIONS = env_int(
    "EVALAPP_FILTER_MAX_CONDITIONS", _default_filter_limits.max_conditions, minimum=1, maximum=_highest_filter_limits.max_conditions
)
EVALAPP_FILTER_MAX_DEPTH = env_int(
    "EVALAPP_FILTER_MAX_DEPTH", _default_filter_limits.max_depth, minimum=1, maximum=_highest_filter_limits.max_depth
)
EVALAPP_FILTER_MAX_LIKE_LENGTH = env_int(
    "EVALAPP_FILTER_MAX_LIKE_LENGTH", _default_filter_limits.max_like_length, minimum=1, maximum=_highest_filter_limits.max_like_length
)
EVALAPP_FILTER_MAX_LIKE_WILDCARDS = env_int(
    "EVALAPP_FILTER_MAX_LIKE_WILDCARDS",
    _default_filter_limits.max_like_wildcards,
    minimum=0,
    maximum=_highest_filter_limits.max_like_wildcards,
)
EVALAPP_SESSION_IDLE_SECONDS = env_int("EVALAPP_SESSION_IDLE_SECONDS", 300, minimum=1)
# How long a worker's claim on judging work lasts without a heartbeat; a killed worker's work is reclaimed after it.
EVALAPP_LEASE_SECONDS = env_int("EVALAPP_LEASE_SECONDS", 60, minimum=3)
# A judging task keeps taking pending work for up to this long, with this many model calls in flight.
EVALAPP_DRAIN_SECONDS = env_int("EVALAPP_DRAIN_SECONDS", 120, minimum=1)
# The exact prompt and raw answer of each LLM verdict are kept this many days (0: not kept at all).
EVALAPP_PROMPT_RETENTION_DAYS = env_int("EVALAPP_PROMPT_RETENTION_DAYS", 30, minimum=0)
# Traces (with their spans, verdicts and evaluations) older than this many days are deleted by the sweep, in
# experiments that don't set their own retention; 0 keeps everything.
EVALAPP_RETENTION_DAYS = env_int("EVALAPP_RETENTION_DAYS", 0, minimum=0, maximum=36500)
# At most this many model calls in flight per worker process (each endpoint's own limit applies across all of them):
# two endpoints at their default ceiling of 64 each, so a look-back at one's limit doesn't halve a burst for the other.
EVALAPP_DRAIN_CONCURRENCY = env_int("EVALAPP_DRAIN_CONCURRENCY", 128, minimum=1, maximum=256)
# Secrets at rest (model API keys, judges.secrets): Fernet keys; the first encrypts, all decrypt.
EVALAPP_ENCRYPTION_KEYS = env_fernet_keys("EVALAPP_ENCRYPTION_KEYS")
# The older way: keys derived from these strings (else from SECRET_KEY). Still read, so what they encrypted stays
# readable; the derived key encrypts only while EVALAPP_ENCRYPTION_KEYS is unset.
EVALAPP_SECRET_KEY = env_str("EVALAPP_SECRET_KEY", "")
EVALAPP_SECRET_KEY_FALLBACKS = env_list("EVALAPP_SECRET_KEY_FALLBACKS", [])
# Where model endpoints may point (judges.egress): public addresses, plus these hosts, addresses and networks
# (loopback, link-local and the like only through this list), plus private networks when allowed.
EVALAPP_ENDPOINT_ALLOWED_HOSTS = env_hosts("EVALAPP_ENDPOINT_ALLOWED_HOSTS")
EVALAPP_ENDPOINT_ALLOW_PRIVATE = env_bool("EVALAPP_ENDPOINT_ALLOW_PRIVATE", False)
# Failed logins and API-token authentications (accounts.throttle): limits per window, and the proxies in front.
EVALAPP_AUTH_FAILURE_WINDOW_SECONDS = env_int("EVALAPP_AUTH_FAILURE_WINDOW_SECONDS", 900, minimum=10, maximum=86400)
EVALAPP_LOGIN_FAILURES_PER_ACCOUNT = env_int("EVALAPP_LOGIN_FAILURES_PER_ACCOUNT", 10, minimum=1)
EVALAPP_LOGIN_FAILURES_PER_ADDRESS = env_int("EVALAPP_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
EVALAPP_TOKEN_FAILURES_PER_ADDRESS = env_int("EVALAPP_TOKEN_FAILURES_PER_ADDRESS", 20, minimum=1)
EVALAPP_PROXY_COUNT = env_int("EVALAPP_PROXY_COUNT", 0, minimum=0, maximum=10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.ApiTokenAuthentication",
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
    'Errors are JSON: `{"detail": ..., "errors": [{"field": ..., "message": ...}]}`.',
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
        "AgreementStatusEnum": ["ok", "insufficient"],
        "AgreementFigureEnum": ["kappa", "mae"],
        "EvaluationRunStatusEnum": ["predicting", "judging", "done", "cancelled"],
    },
}

# django-q2 reads this once, at import. Tests switch to sync mode through EVALAPP_Q_SYNC, not override_settings.
REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER: dict = {
    "name": "evalapp",
    # The queue a cluster serves; the same "name" (it signs task payloads) with another queue keeps e.g. a test
    # run's workers apart from the demo's on one broker.
    "cluster_name": env_str("EVALAPP_Q_QUEUE", "evalapp"),
    # Each worker process holds the model client (~250 MiB) and judges up to EVALAPP_DRAIN_CONCURRENCY calls at once;
    # one is the default since a burst no longer waits behind another endpoint's look-back and a Try it no longer
    # waits behind a drain (design note 51). README: sizing.
    "workers": env_int("EVALAPP_Q_WORKERS", 1, minimum=1),
    # A task may run this long; after `retry` seconds an unacknowledged task is handed out again.
    "timeout": env_int("EVALAPP_Q_TIMEOUT", 300, minimum=10),
    "retry": env_int("EVALAPP_Q_TIMEOUT", 300, minimum=10) + 60,
    "max_attempts": 3,
    "queue_limit": 50,
    # A worker process is replaced after this many tasks (django-q2's default is 500: with a task per ingest request,
    # a new process a minute under load, each spending seconds importing the model client before its first
    # judgement — judges.llm.warm_up), or as soon as it holds more than 1 GiB, which is what recycling guards against.
    "recycle": 10_000,
    "max_rss": 1024 * 1024,
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
    Q_CLUSTER["broker_class"] = "judges.redis_broker.PatientRedis"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "judges.brokers.PatientORM"
# A 503 for a database that is down says when to try again (OTLP exporters honour it).
EVALAPP_RETRY_AFTER_SECONDS = env_int("EVALAPP_RETRY_AFTER_SECONDS", 30, minimum=1, maximum=3600)

# "throttle" counts failed logins (accounts.throttle) for every web process at once: Redis when there is one, else
# a table of the database (made by accounts' migration 0003). MAX_ENTRIES is high so that a spray of usernames
# cannot push the counts out (the table deletes expired rows first).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "evalapp-throttle"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "evalapp_throttle", "OPTIONS": {"MAX_ENTRIES": 100_000}}
    ),
}

LOG_LEVEL = env_choice("EVALAPP_LOG_LEVEL", "INFO", LOG_LEVELS)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # While the database or Redis is down, django-q2's tracebacks about it become one line a minute.
    "filters": {"quiet_outage": {"()": "judges.quiet_log.QuietOutageFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "evalapp": {"level": LOG_LEVEL},
        "traces": {"level": LOG_LEVEL},
        "judges": {"level": LOG_LEVEL},
        "accounts": {"level": LOG_LEVEL},  # accounts.audit: failed and refused logins and tokens
        "datasets": {"level": LOG_LEVEL},
        "django-q": {"level": env_choice("EVALAPP_Q_LOG_LEVEL", "WARNING", LOG_LEVELS), "filters": ["quiet_outage"]},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Behind HTTPS (README: "Production settings"). EVALAPP_HTTPS=true redirects plain HTTP (except /healthz, which load
# balancers probe over HTTP), sends cookies only over HTTPS and asks browsers for HTTPS from then on (HSTS).
EVALAPP_HTTPS = env_bool("EVALAPP_HTTPS", False)
SECURE_SSL_REDIRECT = EVALAPP_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = EVALAPP_HTTPS
SECURE_HSTS_SECONDS = env_int("EVALAPP_HSTS_SECONDS", 365 * 24 * 3600 if EVALAPP_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EVALAPP_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole domain to HTTPS in browsers' built-in lists: the domain's owner opts in.
SECURE_HSTS_PRELOAD = env_bool("EVALAPP_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# TLS ended at a proxy in front: trust its X-Forwarded-Proto (only when the proxy sets it on every request).
if env_bool("EVALAPP_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A login lasts this long (then the next page asks for the password again).
SESSION_COOKIE_AGE = env_int("EVALAPP_SESSION_HOURS", 24, minimum=1, maximum=24 * 90) * 3600

# Sent on every response (evalapp.middleware). Scripts only from our own static files: no inline <script>, no
# on...= attributes, no eval (so no htmx hx-on or trigger filters), plotly.js from our static files. Styles:
# stylesheets from our files, and two <style> elements plotly.js adds, allowed by their hashes: an empty one it
# fills through the CSSOM (which CSP does not govern) and the fixed stylesheet of its map library (in the
# plotly.js 4.1.1 basic bundle too; another version may change it, and the browser tests then report the violation with the new hash).
# htmx's indicator styles are in app.css instead of its <style>. style="" attributes are allowed
# (style-src-attr 'unsafe-inline'): templates set widths (bars, waterfalls) with them; they can't run code.
PLOTLY_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # an empty <style>
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",  # maplibre-gl's stylesheet, inside plotly-basic.min.js
]
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", *PLOTLY_STYLE_HASHES],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Alerts (evalapp.alerts): where links in notifications point, and how e-mail goes out. The console backend
# prints mail to the worker's log (the demo's setting); set EVALAPP_EMAIL_HOST for SMTP.
EVALAPP_BASE_URL = env_str("EVALAPP_BASE_URL", "http://127.0.0.1:8000")
EMAIL_HOST = env_str("EVALAPP_EMAIL_HOST", "")
EMAIL_PORT = env_int("EVALAPP_EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EVALAPP_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("EVALAPP_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EVALAPP_EMAIL_TLS", True)
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("EVALAPP_EMAIL_FROM", "evalapp <alerts@localhost>")
