"""The Overview's first load in a browser, as `./run app` serves it (issue 17, page weight): collectstatic, gunicorn,
the demo data, then headless Chromium with an empty cache logs in (without loading a page) and opens the demo
experiment's Overview. Prints the time from navigation to the first frame painted with the first chart visible, with
every chart of the first screen visible (the server draws them as SVG: design note 50), and with plotly having taken
over every chart of the first screen ("interactive"); when the HTML and plotly.js had arrived, the first contentful
paint, and the bytes transferred until interactive (headers and bodies as sent, compressed), cold (a fresh browser
profile each time) and warm (reloaded). Run by `bench/pages.py --first-load`, or on its own:

    .venv/bin/python bench/first_load.py [--runs 5] [--url http://127.0.0.1:8000]

Targets: first load (the first screen) ≤ 500 ms and ≤ 1.5 MB transferred on a cold cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(var_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EVALAPP_", "DJANGO_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "DEBUG"):
        env.pop(key, None)
    env.update(EVALAPP_VAR_DIR=str(var_dir), SECRET_KEY="evalapp-bench-first-load-only", PYTHONPATH=str(ROOT),
               EVALAPP_ENDPOINT_ALLOWED_HOSTS="127.0.0.1",  # as `./run app` sets it: the demo's stand-in is on loopback
               DJANGO_SETTINGS_MODULE="evalapp.settings")
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz")


def chromium_path() -> str:
    path = os.environ.get("EVALAPP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("no chromium found (Debian's `chromium`, or set EVALAPP_CHROMIUM)")
    return path


def log_in(context, url: str) -> None:
    """Logs in through HTTP requests of the browser context (its cookies), so no page asset lands in the cache."""
    import re

    form = context.request.get(f"{url}/login/").text()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    answer = context.request.post(f"{url}/login/", form={"csrfmiddlewaretoken": token, "username": "demo", "password": "demo"},
                                  headers={"Referer": f"{url}/login/"}, max_redirects=0)
    if answer.status != 302:
        raise SystemExit(f"log-in failed ({answer.status})")


# Marks, in the page, the first frame painted with the first chart visible, with every chart of the first screen
# (those the 1440×900 viewport shows before any scrolling) visible, and with every chart of the first screen taken
# over by plotly ("interactive": hover and zoom work). A chart is visible once it holds the server's SVG
# (svg.chart-svg, design note 50) or plotly's (.main-svg: a checkout from before note 50, where all three marks come
# with plotly). Checked in an animation frame, once rendering has started (the stylesheet is in: the layout is the one
# painted); the mark is taken in a task queued from that frame, which runs after the frame is painted.
MARK_CHARTS_DRAWN = """
(function () {
  var marks = window.evalappFirstLoad = {};
  var screen = null, pending = false;
  function visible(chart) { return chart.querySelector("svg.chart-svg, .main-svg"); }
  function interactive(chart) { return chart.querySelector(".main-svg"); }
  function afterPaint(key) { if (key in marks) return; marks[key] = null; setTimeout(function () { marks[key] = performance.now(); }, 0); }
  function check() {
    pending = false;
    var charts = Array.prototype.slice.call(document.querySelectorAll(".chart"));
    if (!charts.some(visible)) return;
    afterPaint("first");
    if (!screen && document.readyState !== "loading") {  // the whole page is parsed: which charts the first screen holds
      screen = charts.filter(function (chart) { var box = chart.getBoundingClientRect(); return box.top < innerHeight && box.bottom > 0; });
      marks.screenCharts = screen.length; marks.allCharts = charts.length;
    }
    if (!screen) return;
    if (screen.every(visible)) afterPaint("screen");
    if (screen.every(interactive)) afterPaint("interactive");
  }
  function soon() { if (!pending) { pending = true; requestAnimationFrame(check); } }
  new MutationObserver(soon).observe(document, {subtree: true, childList: true});
  document.addEventListener("DOMContentLoaded", soon);
})();
"""


def load(page, url: str) -> dict[str, float]:
    """Navigates; returns ms (from navigation start) until the HTML is in, the first chart is visible, every chart of
    the first screen is visible, plotly.js is in and plotly has taken over the first screen; the bytes transferred and
    the responses until then."""
    responses = []

    def seen(response) -> None:
        responses.append(response)

    page.on("response", seen)
    page.goto(url)
    page.wait_for_function("() => window.evalappFirstLoad && window.evalappFirstLoad.interactive", timeout=30_000)
    figures = page.evaluate("""() => {
      const marks = window.evalappFirstLoad;
      const plotly = performance.getEntriesByType("resource").find(entry => entry.name.includes("/plotly"));
      return {html: performance.getEntriesByType("navigation")[0].responseEnd, plotly: plotly ? plotly.responseEnd : 0,
              first: marks.first, screen: marks.screen, interactive: marks.interactive, screen_charts: marks.screenCharts,
              charts: marks.allCharts, paint: performance.getEntriesByName("first-contentful-paint")[0].startTime};
    }""")
    page.remove_listener("response", seen)
    sent = 0
    for response in responses:
        sizes = response.request.sizes()
        sent += sizes["responseHeadersSize"] + sizes["responseBodySize"]
    return {**figures, "sent": sent, "responses": len(responses)}


def experiment_url(url: str, context) -> str:
    import re

    listing = context.request.get(f"{url}/").text()
    return url + re.search(r'href="(/experiments/\d+)/', listing).group(1) + "/overview"


def measure(runs: int, url: str | None = None) -> None:
    if url:  # a server already running with the demo data, e.g. to compare two checkouts under the same load
        browse(url, runs)
        return
    with tempfile.TemporaryDirectory(prefix="evalapp-first-load-") as tmp:
        var_dir = Path(tmp)
        env = server_env(var_dir)
        manage(env, "migrate", "--noinput")
        manage(env, "demo", "--if-missing")
        manage(env, "collectstatic", "--noinput")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([PYTHON, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(url, server)
            browse(url, runs)
        finally:
            server.terminate()
            server.wait(10)


def browse(url: str, runs: int) -> None:
    from playwright.sync_api import sync_playwright

    cold, warm = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        for run in range(runs + 1):  # the first run warms the browser's own start-up
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_init_script(MARK_CHARTS_DRAWN)
            log_in(context, url)
            overview = experiment_url(url, context)
            if not run:  # a cold cache in the browser, not a cold server: each gunicorn worker's first
                for _ in range(8):  # Overview imports and loads what it needs (scipy among them)
                    context.request.get(overview)
            page = context.new_page()
            first = load(page, overview)
            again = load(page, overview)
            context.close()
            if run:
                cold.append(first)
                warm.append(again)
        browser.close()

    def report(label: str, loads: list[dict[str, float]]) -> None:
        def median(key: str) -> float:
            return statistics.median(figures[key] for figures in loads)

        def figure(key: str) -> str:
            return f"{median(key):5.0f} ms (max {max(f[key] for f in loads):5.0f})"

        print(f"{label:<20} first chart {figure('first')}   first screen {figure('screen')}   interactive {figure('interactive')}   "
              f"{median('sent') / 1024:4.0f} KiB in {median('responses'):.0f} responses   "
              f"[HTML in by {median('html'):4.0f} ms, first contentful paint {median('paint'):4.0f} ms, plotly.js in by {median('plotly'):4.0f} ms]",
              flush=True)

    print(f"\nOverview first load in Chromium, demo data, gunicorn with collected static files; {runs} runs; "
          f"{cold[0]['screen_charts']} of the {cold[0]['charts']} charts on the first screen (1440×900)")
    report("cold cache", cold)
    report("warm cache (reload)", warm)
    print("first chart / first screen: the first frame painted with the first chart / every chart of the first screen "
          "visible (server-drawn SVG, or plotly's on a checkout before design note 50); interactive: plotly has taken "
          "over every chart of the first screen (hover, zoom)")
    print("targets: cold first screen ≤ 500 ms and ≤ 1,536 KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="measure a server already running with the demo data (log-in demo/demo) instead of starting one")
    args = parser.parse_args()
    measure(args.runs, args.url)


if __name__ == "__main__":
    main()
