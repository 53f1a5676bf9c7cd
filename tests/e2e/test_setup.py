"""First start in a real browser: the setup token from the log, then the first admin."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e


def test_setup_closes_for_good_once_the_admin_exists(page, live, instance):
    # ``instance`` went through /setup: a wrong token was refused, the logged one accepted.
    response = page.goto(live.url + "/setup")
    assert response is not None and response.status == 404
    assert "setup token" not in page.content().lower()

    flows.log_in(page, live, instance.email, instance.password)
    expect(page.get_by_role("heading", name="My API keys")).to_be_visible()
    expect(page.get_by_role("link", name="Global keys")).to_be_visible()
