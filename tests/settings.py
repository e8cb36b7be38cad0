"""The test suite's settings: evalapp.settings as they are, with DEBUG off as in production, plus a SECRET_KEY,
which evalapp.settings demand when DEBUG is off, and loopback allowed for model endpoints (the stand-in's
address). They go into the environment, so the server and worker processes the tests start (manage.py qcluster,
standin_llm) read the same."""

import os

os.environ.setdefault("SECRET_KEY", "evalapp-test-suite-only-7c2e91d4b8a35f60")
# The stand-in model answers on loopback, which model endpoints may not reach unless allowed (judges.egress).
os.environ.setdefault("EVALAPP_ENDPOINT_ALLOWED_HOSTS", "127.0.0.1")

from evalapp.settings import *  # noqa: E402, F403

# Pages name plain static files, which the live server's static handler finds (it does not read a manifest): a
# collectstatic done for `./run app` in this checkout (var/staticfiles) must not turn them into hashed names here.
# tests/ui/test_static_files.py collects into a directory of its own to check the hashed, compressed files.
STATIC_ROOT = VAR_DIR / "test-staticfiles"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
