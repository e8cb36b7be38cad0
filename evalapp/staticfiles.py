"""Static files storage: fingerprinted and compressed after collectstatic, plain names before it."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFiles(CompressedManifestStaticFilesStorage):
    """After `collectstatic` (which `./run app` runs), a page names each file by its content hash, and whitenoise
    sends the .br or .gz stored beside it with a ten-year immutable cache. Before it (a test run, a bare
    `manage.py runserver`, a server started in a fresh directory), there is no manifest: a page names the plain
    file, which whitenoise serves from the finders (WHITENOISE_USE_FINDERS), instead of failing the page."""

    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:  # neither in the manifest nor collected
            return name
