"""Static files as `./run app` serves them (issue 17, page weight): after collectstatic, pages name each file by a
content hash, whitenoise sends it brotli- or gzip-compressed with a ten-year immutable cache; plotly.js is the basic
bundle, byte for byte the published one; a page links one stylesheet and one script, each its parts joined
(evalapp/bundles.py), with or without collectstatic."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from evalapp.bundles import BUNDLES

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


def part_text(name: str) -> bytes:
    return Path(finders.find(name)).read_bytes().strip()


def assert_holds_every_part_in_order(body: bytes, bundle: str) -> None:
    positions = [body.find(part_text(part)) for part in BUNDLES[bundle]]
    assert -1 not in positions, f"{bundle} lacks {BUNDLES[bundle][positions.index(-1)]}"
    assert positions == sorted(positions), f"{bundle} has its parts out of order"


def test_a_page_links_one_stylesheet_and_one_script_each_every_part_joined(collected, user, experiment):
    client = Client()
    client.force_login(user)
    html = client.get(reverse("experiment-overview", args=[experiment.pk])).content.decode()

    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert len(stylesheets) == 1 and re.fullmatch(r"/static/evalapp/bundle\.[0-9a-f]{12}\.css", stylesheets[0])
    assert len(scripts) == 1 and re.fullmatch(r"/static/evalapp/js/bundle\.[0-9a-f]{12}\.js", scripts[0])
    for url, bundle in ((stylesheets[0], "evalapp/bundle.css"), (scripts[0], "evalapp/js/bundle.js")):
        response, compressed = served(client, url, "br, gzip, identity")
        assert response["Content-Encoding"] == "br"
        assert response["Cache-Control"] == "max-age=315360000, public, immutable"
        _, body = served(client, url, "identity")
        assert len(compressed) < len(body) / 2
        assert_holds_every_part_in_order(body, bundle)
    assert b"htmx" in served(client, scripts[0], "identity")[1][:200]  # htmx first, before the scripts that listen to it


def test_without_collectstatic_the_bundles_are_served_from_the_finder(user, experiment):
    client = Client()
    client.force_login(user)
    html = client.get(reverse("experiment-overview", args=[experiment.pk])).content.decode()
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) == ["/static/evalapp/bundle.css"]
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/evalapp/js/bundle.js"]
    for bundle in BUNDLES:
        _, body = served(client, f"/static/{bundle}", "identity")
        assert_holds_every_part_in_order(body, bundle)


def test_a_bundle_follows_its_parts_when_they_change(tmp_path):
    sources = tmp_path / "static"
    shutil.copytree(ROOT / "static", sources, ignore=shutil.ignore_patterns("vendor"))
    with override_settings(STATICFILES_DIRS=[sources], VAR_DIR=tmp_path / "var"):
        before = Path(finders.find("evalapp/bundle.css")).read_bytes()
        with (sources / "evalapp" / "overview.css").open("a") as css:
            css.write(".chart-added-in-this-test { color: red; }\n")
        after = Path(finders.find("evalapp/bundle.css")).read_bytes()
    assert b".chart-added-in-this-test" not in before and b".chart-added-in-this-test { color: red; }" in after
    assert after.startswith(before[:1000])  # app.css still comes first


def test_a_bundle_part_no_finder_knows_is_an_error_that_names_it(monkeypatch):
    monkeypatch.setitem(BUNDLES, "evalapp/bundle.css", ("evalapp/app.css", "evalapp/no-such-area.css"))
    with pytest.raises(FileNotFoundError, match="evalapp/no-such-area.css"):
        finders.find("evalapp/bundle.css")
