"""The Overview as `./run app` serves it — static files collected, gunicorn, whitenoise — opened in Chromium with an
empty cache: plotly.js and our one stylesheet and script come from content-hashed URLs, compressed, with a far-future
cache (issue 17). tests/ui/test_static_files.py checks the same through Django's test client; this is what a browser
is actually sent."""

from __future__ import annotations

import re

from django.urls import reverse
from playwright.sync_api import expect

from tests.docs.test_readme_examples import demo_database, demo_server, standin  # noqa: F401 — fixtures

HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.(js|css)$")


def test_the_overview_in_a_browser_loads_plotly_from_a_compressed_cache_busted_url(browser, demo_database, standin, tmp_path):  # noqa: F811
    with demo_server(tmp_path / "var", demo_database, standin, collectstatic=True) as server:
        [demo] = [e for e in server.get("/api/v1/experiments").json()["experiments"] if e["name"] == "demo-agent"]
        context = browser.new_context(viewport={"width": 1440, "height": 900})  # a fresh profile: an empty cache
        try:
            form = context.request.get(f"{server.url}/login/").text()
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
            answer = context.request.post(f"{server.url}/login/", form={"csrfmiddlewaretoken": csrf, "username": "demo", "password": "demo"},
                                          headers={"Referer": f"{server.url}/login/"}, max_redirects=0)
            assert answer.status == 302
            page = context.new_page()
            static = []
            page.on("response", lambda response: static.append(response) if "/static/" in response.url else None)
            page.goto(f"{server.url}{reverse('experiment-overview', args=[demo['id']])}")
            expect(page.locator(".chart .js-plotly-plot").first).to_be_visible(timeout=30_000)  # plotly took a chart over

            sent = {response.url.split(server.url, 1)[1]: response.all_headers() for response in static}
            plotly = [url for url in sent if "/vendor/plotly/" in url]
            assert len(plotly) == 1 and re.search(r"/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js$", plotly[0]), sent.keys()
            ours = [url for url in sent if url.endswith((".css", ".js")) and "/vendor/" not in url]
            assert ours and all(HASHED.search(url) for url in ours), ours
            for url in [*plotly, *ours]:
                headers = sent[url]
                assert headers.get("content-encoding") in ("br", "gzip"), (url, headers)
                assert "immutable" in headers.get("cache-control", "") and "max-age=315360000" in headers["cache-control"], (url, headers)
        finally:
            context.close()
