"""A person's whole life with their keys, in a real browser against the real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import flows
from tests.e2e.flows import row
from tests.fakekeys import fake_key

pytestmark = pytest.mark.e2e


def test_register_log_in_and_keep_three_keys(page, live, emulator, instance):
    email = flows.unique_email("dana")
    flows.register(page, live, email)
    flows.log_out(page)
    flows.log_in(page, live, email)
    expect(page.get_by_role("heading", name="My API keys")).to_be_visible()

    # A key the provider accepts is stored, shown masked, marked valid.
    openai_key = emulator.valid_key("openai")
    flows.add_key(page, live, "openai", openai_key)
    expect(page.get_by_text("Your OpenAI key was added. OpenAI accepted it")).to_be_visible()
    expect(row(page, "openai").locator(".badge")).to_have_text("Valid")
    expect(row(page, "openai").locator("code.hint")).to_have_text(re.compile(openai_key[-4:]))
    assert openai_key not in page.content()

    # A key the provider rejects is not stored; the provider's own words are shown.
    flows.add_key(page, live, "anthropic", fake_key("anthropic"))
    field_error = page.locator(".field-error")
    expect(field_error).to_contain_text("invalid x-api-key")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    page.goto(live.url + "/keys/")
    expect(row(page, "anthropic")).to_contain_text("No key")

    # A provider that is down: the key is kept, and the page says so without calling it invalid.
    groq_key = emulator.valid_key("groq")
    emulator.set_mode("groq", "down")
    flows.add_key(page, live, "groq", groq_key)
    expect(page.get_by_text("It could not be checked, so its state is unknown")).to_be_visible()
    groq_badge = row(page, "groq").locator(".badge")
    expect(groq_badge).to_have_text("Provider error")
    expect(groq_badge).not_to_have_text(re.compile("Invalid"))

    # The provider is back: validating again from the dashboard updates the row.
    emulator.set_mode("groq", None)
    row(page, "groq").get_by_role("button", name="Validate", exact=True).click()
    expect(groq_badge).to_have_text("Valid")
    expect(page.get_by_text("Groq accepted your key.")).to_be_visible()

    # Replacing shows the new key's hint, never the old or new plaintext.
    new_openai = emulator.valid_key("openai")
    flows.add_key(page, live, "openai", new_openai)
    expect(page.get_by_text("Your OpenAI key was replaced.")).to_be_visible()
    expect(row(page, "openai").locator("code.hint")).to_have_text(re.compile(new_openai[-4:]))
    assert new_openai not in page.content() and openai_key not in page.content()

    # Deleting asks first; cancelling keeps the key, confirming removes it.
    row(page, "openai").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete your OpenAI key?")).to_be_visible()
    expect(page.locator("code.hint")).to_have_text(re.compile(new_openai[-4:]))
    page.get_by_role("link", name="Cancel").click()
    expect(row(page, "openai").locator("code.hint")).to_be_visible()
    row(page, "openai").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete key").click()
    expect(page.get_by_text("Your OpenAI key was deleted.")).to_be_visible()
    expect(row(page, "openai")).to_contain_text("No key")

    # The activity page tells the story, newest first, with hints and never a key.
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    events = page.locator("tr.event")
    expect(events.first).to_have_attribute("data-action", "key.delete")
    expect(events.first).to_contain_text(new_openai[-4:])
    for what in ("Key replaced", "Key checked with its provider", "Key added", "Sign-in"):
        expect(page.locator("tr.event", has_text=what).first).to_be_visible()
    expect(events.last).to_have_attribute("data-action", "user.register")
    refused = page.locator("tr.event", has_text="anthropic").first
    expect(refused).to_contain_text("invalid")  # the rejected key's check, with its verdict
    page.get_by_label("Provider").select_option("groq")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"provider=groq"))
    expect(page.locator("tr.event td[data-label=Provider]")).to_have_text(
        ["groq"] * page.locator("tr.event").count()
    )
    content = page.content()
    assert all(k not in content for k in (openai_key, new_openai, groq_key))
    flows.log_out(page)


def test_after_logout_the_back_button_shows_no_key_data(page, live, emulator, instance):
    email = flows.unique_email("erin")
    flows.register(page, live, email)
    key = emulator.valid_key("mistral")
    flows.add_key(page, live, "mistral", key)
    hint = row(page, "mistral").locator("code.hint").inner_text()
    assert hint.endswith(key[-4:])

    flows.log_out(page)
    # Back to the dashboard, then to the key form: both were sent with no-store, so the
    # browser asks the server again instead of showing its copy, and the server wants a login.
    for _ in range(2):
        page.go_back()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert hint not in page.content() and email not in page.content()
