"""The key form with the keyboard alone: reachable, labelled, in order, visibly focused."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows
from tests.e2e.flows import row

pytestmark = pytest.mark.e2e

_FOCUS_VISIBLE = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
}"""


def focused(page: Page) -> str:
    """What the focused element says of itself: its tag and accessible text."""
    return page.evaluate(
        "() => { const el = document.activeElement;"
        " return `${el.tagName.toLowerCase()}:${(el.innerText || el.labels?.[0]?.innerText"
        " || el.getAttribute('aria-label') || '').trim()}`; }"
    )


def tab_to(page: Page, wanted: str, limit: int = 40) -> list[str]:
    """Press Tab until ``wanted`` has focus; return what had focus on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        assert page.evaluate(_FOCUS_VISIBLE), f"no visible focus on {seen[-1]}"
        if seen[-1] == wanted:
            return seen
    raise AssertionError(f"Tab never reached {wanted!r}; it went through {seen}")


def test_the_key_form_works_with_the_keyboard_alone(page, live, emulator, instance):
    flows.register(page, live, flows.unique_email("kim"))
    page.goto(live.url + "/keys/")

    # The first Tab reaches the skip link, which jumps over the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    tab_to(page, "a:Add key")
    expect(row(page, "openai").get_by_role("link", name="Add key")).to_be_focused()
    page.keyboard.press("Enter")

    # The form opens with the key field focused; a wrong key is refused with the reason
    # tied to the field, and the field keeps the focus.
    key_field = page.get_by_label("API key")
    expect(key_field).to_be_focused()
    page.keyboard.type("not-a-key")
    page.keyboard.press("Enter")
    expect(key_field).to_be_focused()
    expect(key_field).to_have_attribute("aria-invalid", "true")
    error_id = key_field.get_attribute("aria-describedby")
    expect(page.locator(f"#{error_id}")).to_contain_text("does not look like a key for OpenAI")

    # Then the right key, and Tab through the form to its button: help link, the expiry
    # reminder (a date field is a stop per part of the date), Save, in order.
    page.keyboard.type(emulator.valid_key("openai"))
    seen = tab_to(page, "button:Save key")
    order = [stop for n, stop in enumerate(seen) if n == 0 or seen[n - 1] != stop]
    assert order == ["a:OpenAI", "input:Expiry reminder", "button:Save key"], order
    page.keyboard.press("Enter")
    expect(page.get_by_text(re.compile("Your OpenAI key was added"))).to_be_visible()
    expect(row(page, "openai").locator(".badge")).to_have_text("Valid")
