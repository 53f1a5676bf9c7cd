"""Every page loads cleanly in a real browser: no console errors, no CSP violations."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e

SIGNED_OUT = ["/auth/login", "/auth/register"]
SIGNED_IN = [
    "/keys/",
    "/keys/openai",
    "/keys/azure_openai",
    "/keys/openai/delete",
    "/auth/password",
    "/no-such-page",
]


def test_pages_load_without_console_errors_or_csp_violations(
    page, live, emulator, instance, watcher
):
    for path in SIGNED_OUT:
        page.goto(live.url + path)
        expect(page.locator("main h1")).to_be_visible()
    flows.register(page, live, flows.unique_email("lee"))
    flows.add_key(page, live, "openai", emulator.valid_key("openai"))
    for path in SIGNED_IN:
        page.goto(live.url + path)
        expect(page.locator("main h1")).to_be_visible()
        # The stylesheet was allowed and applied: the skip link sits off-screen until focused.
        assert page.locator(".skip-link").bounding_box()["x"] < 0, path
    assert watcher.problems == []


def test_an_inline_script_would_be_blocked_and_reported(page, live, instance, watcher):
    page.goto(live.url + "/auth/login")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    expect(page.locator("main h1")).to_be_visible()
    assert page.evaluate("() => window.ran === undefined"), "the inline script ran"
    assert any("CSP violation: script-src" in p for p in watcher.problems), watcher.problems
    watcher.problems.clear()  # seen and expected: the check above is this test's point
