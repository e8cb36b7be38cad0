"""Browser tests: the real pages in headless Chromium (Debian's `chromium`, driven by Playwright), against a live
server on a test database. Playwright's sync API runs an event loop in this thread, so Django's async-safety
check must be told that database calls here are fine."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The README's pictures are refreshed with EVALAPP_SCREENSHOTS=docs/screenshots; otherwise they go to a scratch
# folder, so a test run leaves the checkout clean.
SCREENSHOTS = Path(os.environ.get("EVALAPP_SCREENSHOTS") or Path(tempfile.gettempdir()) / "evalapp-screenshots").resolve()


def chromium_path() -> str:
    path = os.environ.get("EVALAPP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium found: `./run tests` installs Debian's chromium, or set EVALAPP_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


# Reports every Content-Security-Policy violation to the console, where the fixture below collects it. Chromium
# also logs one itself ("Refused to ..."); this adds the directive and what was blocked.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
                " at " + event.sourceFile + ":" + event.lineNumber + " " + (event.sample || ""));
});
"""


def is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation:") or "Content Security Policy" in text


@pytest.fixture
def page(browser):
    """A fresh browser tab. Any Content-Security-Policy violation on any page it visits fails the test (at
    teardown, listing them): the pages must work under the policy evalapp sends."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    csp_violations: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: csp_violations.append(f"{page.url}: {message.text}") if is_csp_violation(message.text) else None)
    page.js_errors = errors  # tests assert no JavaScript error happened
    page.csp_violations = csp_violations
    yield page
    context.close()
    if csp_violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(csp_violations[:20]), pytrace=False)


@pytest.fixture
def logged_in(page, live_server, user):
    """`page`, logged in as the editor "pat"."""
    return log_in(page, live_server, "pat", "pat-password-123")


def log_in(page, live_server, username: str, password: str):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


def post_traces(live_server, experiment, token: str, traces: list) -> None:
    """Log traces through the JSON API, as an application would."""
    import requests

    response = requests.post(
        f"{live_server.url}/api/v1/experiments/{experiment.pk}/traces",
        json={"traces": traces},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def screenshot(page, name: str) -> None:
    """Saved under SCREENSHOTS (docs/screenshots/ when refreshing the README's pictures)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
