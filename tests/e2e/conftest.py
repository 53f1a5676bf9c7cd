"""Browser fixtures: the live server, Chromium, and a page that fails the test on any
console error or Content-Security-Policy violation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import flows
from tests.e2e.live import LiveServer, chromium_missing, launch_options, start_server

# Reports every CSP violation on the page to the console, where PageWatcher sees it.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class PageWatcher:
    """Collects what a user would never see but a developer must: console errors,
    uncaught exceptions, CSP violations."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._documents: set[str] = set()

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("response", self._response)

    def _response(self, response) -> None:
        if response.request.is_navigation_request() and response.status >= 400:
            self._documents.add(response.url)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url")
        # Chromium reports a page's own 4xx status (a form with errors answers 400) as a failed
        # load; the tests check those statuses themselves. A failed script, stylesheet or image
        # is still a problem.
        if message.text.startswith("Failed to load resource") and url in self._documents:
            return
        self.problems.append(f"console: {message.text} ({url})")


@pytest.fixture(scope="session")
def live(tmp_path_factory, emulator) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("e2e"), emulator)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if problem := chromium_missing():
        pytest.fail(problem, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(**launch_options())
        yield chromium
        chromium.close()


@pytest.fixture
def watcher() -> PageWatcher:
    return PageWatcher()


@pytest.fixture
def new_page(browser, watcher):
    """``new_page()``: a page in a fresh browser profile (no cookies), watched for errors."""
    contexts = []

    def factory():
        context = browser.new_context()
        context.set_default_timeout(10_000)
        context.add_init_script(_CSP_LISTENER)
        contexts.append(context)
        page = context.new_page()
        watcher.attach(page)
        return page

    yield factory
    for context in contexts:
        context.close()
    assert not watcher.problems, "\n".join(watcher.problems)


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="session")
def instance(live, browser) -> flows.Admin:
    """The first start, done once through the browser: the setup token from the server log,
    then the first admin account."""
    context = browser.new_context()
    try:
        admin = flows.first_start(context.new_page(), live)
    finally:
        context.close()
    return admin
