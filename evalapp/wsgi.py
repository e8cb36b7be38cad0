from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalapp.settings")
application = get_wsgi_application()
# Import the URLconf and every view module now, as the worker boots, rather than in its first request (~0.6 s of
# imports on this machine, which that request waited for).
get_resolver().url_patterns
