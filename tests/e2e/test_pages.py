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


def test_the_copy_button_shows_only_where_it_can_copy(browser, page, live, instance):
    # Without JavaScript the new token is there to select by hand, and no button that does
    # nothing is offered; with it (and a clipboard) the button appears.
    plain = browser.new_context(java_script_enabled=False)
    try:
        for tab, copies in ((plain.new_page(), False), (page, True)):
            flows.register(tab, live, flows.unique_email("copy"))
            tab.goto(live.url + "/tokens/")
            tab.fill("input[name=name]", "cron")
            tab.get_by_role("button", name="Create token").click()
            expect(tab.locator("#new-token-value")).to_be_visible()
            copy = tab.get_by_role("button", name="Copy")
            if copies:
                expect(copy).to_be_visible()
            else:
                expect(copy).to_be_hidden()
    finally:
        plain.close()
