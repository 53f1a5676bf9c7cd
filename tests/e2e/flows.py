"""What a person does in the browser, step by step, with what they should see on the way."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from playwright.sync_api import Page, expect

from tests.e2e.live import LiveServer

PASSWORD = "correct horse battery staple"
_emails = itertools.count(1)


@dataclass(frozen=True)
class Admin:
    email: str
    password: str


def unique_email(name: str) -> str:
    return f"{name}{next(_emails)}@example.com"


def first_start(page: Page, live: LiveServer, email: str = "admin@example.com") -> Admin:
    """A fresh instance sends everyone to /setup; the log's token opens it; the admin finishes."""
    page.goto(live.url + "/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_role("heading", name="Set up Keyhold")).to_be_visible()
    page.get_by_label("Setup token").fill("khs_not-the-token")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("That is not the current setup token.")).to_be_visible()
    page.get_by_label("Setup token").fill(live.setup_token())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Create the admin account")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin and finish setup").click()
    expect(page.get_by_text("Setup is finished. You are signed in as the admin.")).to_be_visible()
    return Admin(email, PASSWORD)


def register(page: Page, live: LiveServer, email: str) -> None:
    page.goto(live.url + "/auth/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="My API keys")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()


def log_in(page: Page, live: LiveServer, email: str, password: str = PASSWORD) -> None:
    page.goto(live.url + "/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have been logged out.")).to_be_visible()


def row(page: Page, provider: str):
    return page.locator(f"#provider-{provider}")


def open_key_form(page: Page, live: LiveServer, provider: str) -> None:
    page.goto(live.url + "/keys/")
    target = row(page, provider)
    target.get_by_role("link", name=re.compile(r"^(Add key|Replace)$")).click()
    expect(page.get_by_label("API key")).to_be_focused()


def submit_key(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Save key").click()


def add_key(page: Page, live: LiveServer, provider: str, key: str) -> None:
    open_key_form(page, live, provider)
    submit_key(page, key)
