"""Static files as `./run app` serves them (issue 17, page weight): after collectstatic, pages name each file by a
content hash, whitenoise sends it brotli- or gzip-compressed with a ten-year immutable cache; plotly.js is the basic
bundle, byte for byte the published one."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PLOTLY = ROOT / "static" / "vendor" / "plotly"


def test_the_vendored_plotly_is_the_published_basic_bundle():
    published = re.search(r"sha256: ([0-9a-f]{64})", (PLOTLY / "README.md").read_text()).group(1)
    assert hashlib.sha256((PLOTLY / "plotly-basic.min.js").read_bytes()).hexdigest() == published


@pytest.fixture
def collected(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path / "static"):
        call_command("collectstatic", "--noinput", verbosity=0)
        yield tmp_path / "static"


def served(client: Client, url: str, encoding: str):
    response = client.get(url, HTTP_ACCEPT_ENCODING=encoding)
    assert response.status_code == 200, url
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_after_collectstatic_pages_name_hashed_files_sent_compressed_with_a_long_cache(collected, user, experiment):
    client = Client()  # made here: whitenoise reads the collected files when its middleware is built
    client.force_login(user)
    html = client.get(reverse("experiment-overview", args=[experiment.pk])).content.decode()

    plotly_url = re.search(r'data-plotly-src="(/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js)"', html).group(1)
    stylesheets = re.findall(r'<link rel="stylesheet" href="(/static/[^"]+)"', html)
    scripts = re.findall(r'<script src="(/static/[^"]+)"', html)
    assert stylesheets and scripts
    for url in [*stylesheets, *scripts]:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), f"{url} has no content hash"

    original = (PLOTLY / "plotly-basic.min.js").read_bytes()
    for encoding, name in (("br", "br"), ("gzip", "gzip")):
        response, body = served(client, plotly_url, f"{encoding}, identity")
        assert response["Content-Encoding"] == name
        assert response["Cache-Control"] == "max-age=315360000, public, immutable"
        assert len(body) < len(original) / 3  # 1.2 MB → under 0.4 MB on the wire
    response, body = served(client, plotly_url, "identity")
    assert "Content-Encoding" not in response and body == original


def test_without_collectstatic_pages_name_the_plain_files_and_they_are_served(user, experiment):
    client = Client()
    client.force_login(user)
    html = client.get(reverse("experiment-overview", args=[experiment.pk])).content.decode()
    assert 'data-plotly-src="/static/vendor/plotly/plotly-basic.min.js"' in html
    response, body = served(client, "/static/vendor/plotly/plotly-basic.min.js", "identity")
    assert body == (PLOTLY / "plotly-basic.min.js").read_bytes()
