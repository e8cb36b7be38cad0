"""One stylesheet and one script for every page (issue 17, first load; design note 46).

Each bundle is its parts joined in order, built by a static files finder, so whatever finds static files finds the
bundles too and nobody has to remember a build step: `collectstatic` (which `./run app` runs) collects them, names
them by their content hash and compresses them like any other file; without it, whitenoise (WHITENOISE_USE_FINDERS),
`runserver` and the tests' live server serve them from the finder. The finder writes each bundle under
`VAR_DIR/static-bundles` when its parts have changed (a file a server can send), written whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.utils import matches_patterns
from django.core.files.storage import FileSystemStorage

# Every area's stylesheet (design note 18: a tab htmx swaps in is styled at once) and every page's script (each acts
# only on its own elements, design note 35), in the order the page linked them. htmx comes first, as django-htmx's
# {% htmx_script %} placed it before ours; its config is the <meta name="htmx-config"> above the bundle.
BUNDLES: dict[str, tuple[str, ...]] = {
    "evalapp/bundle.css": (
        "evalapp/app.css",
        "evalapp/judges.css",
        "evalapp/traces.css",
        "evalapp/sessions.css",
        "evalapp/overview.css",
        "evalapp/datasets.css",
        "evalapp/evaluations.css",
    ),
    "evalapp/js/bundle.js": (
        "django_htmx/htmx-2.min.js",
        "evalapp/js/app.js",
        "evalapp/js/countdown.js",
        "evalapp/js/judge_form.js",
        "evalapp/js/overview_charts.js",
        "evalapp/js/trace-selection.js",
        "evalapp/js/labelling.js",
    ),
}


def part_path(name: str) -> str:
    """A part's file, from the other finders (this one finds only bundles)."""
    for finder in finders.get_finders():
        if isinstance(finder, BundleFinder):
            continue
        found = finder.find(name)
        if found:
            return found
    raise FileNotFoundError(f"bundle part {name!r} is not a static file any finder knows")


def bundle_text(name: str) -> bytes:
    """The parts joined, each under a comment naming it. Scripts are separated by a semicolon, so a part that ends
    without one can't run into the next; each of ours is an IIFE or a guarded block, so none leaks a strict mode or a
    name into the next."""
    script = name.endswith(".js")
    pieces = []
    for part in BUNDLES[name]:
        body = Path(part_path(part)).read_bytes().rstrip()
        pieces.append(f"/* {part} */\n".encode() + body + (b"\n;\n" if script else b"\n"))
    return b"".join(pieces)


class BundleFinder(finders.BaseFinder):
    """Finds `BUNDLES`' names; each is (re)written when asked for and its parts changed."""

    def __init__(self, *args, **kwargs) -> None:
        self.storage = FileSystemStorage(location=Path(settings.VAR_DIR) / "static-bundles")
        super().__init__(*args, **kwargs)

    def check(self, **kwargs) -> list:
        return []

    def build(self, name: str) -> str:
        path = Path(self.storage.path(name))
        text = bundle_text(name)
        if not path.exists() or path.read_bytes() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)  # two server processes may build at once: each replaces the file whole
        return str(path)

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path not in BUNDLES:
            return [] if find_all else None
        built = self.build(path)
        return [built] if find_all else built

    def list(self, ignore_patterns):
        for name in BUNDLES:
            if not matches_patterns(name, ignore_patterns or []):
                self.build(name)
                yield name, self.storage
