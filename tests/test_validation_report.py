"""What the last check answered, how long it took, what it learnt: on the pages and in the API."""

from __future__ import annotations

import re

from tests.validation_helpers import (
    EMAIL,
    api_status,
    closed_port,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
    validate,
)
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey

_META = re.compile(r'<span class="check-meta">([^<]*)</span>')


def meta(row_html: str) -> str | None:
    """What the dashboard shows beside the status badge."""
    found = _META.search(row_html)
    return found.group(1).strip() if found else None


def test_the_dashboard_shows_each_checks_answer_and_time(make_app, emulator):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    app = make_app(PROVIDER_BASE_URLS={"mistral": dead})
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    store_key(app, emulator, "groq")  # unknown to the provider
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))  # unreachable
    store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    emulator.slow("deepseek", 0.3)
    html = page(client.post("/keys/validate-all", follow_redirects=True))

    assert re.fullmatch(r"HTTP 200, \d+ ms", meta(dashboard_row(html, "openai")))
    assert re.fullmatch(r"HTTP 401, \d+ ms", meta(dashboard_row(html, "groq")))
    assert re.fullmatch(r"No HTTP answer, \d+ ms", meta(dashboard_row(html, "mistral")))
    slow = re.fullmatch(r"HTTP 200, (\d+) ms", meta(dashboard_row(html, "deepseek")))
    assert slow and int(slow.group(1)) >= 300
    assert meta(dashboard_row(html, "cohere")) is None  # no key, no check
    store_key(app, emulator, "huggingface")
    assert meta(dashboard_row(page(client.get("/keys/")), "huggingface")) is None  # unchecked


def test_the_admin_sees_the_same_for_global_keys(admin_client, emulator):
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    html = page(admin_client.get("/admin/keys"))
    assert re.fullmatch(r"HTTP 200, \d+ ms", meta(dashboard_row(html, "groq")))


def test_the_api_reports_the_last_check(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openrouter", emulator.valid_key("openrouter"))
    store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    store_key(app, emulator, "huggingface")
    for provider in ("openrouter", "deepseek", "groq"):
        validate(client, provider)

    openrouter = api_status(client, "openrouter")
    assert openrouter["http_status"] == 200 and openrouter["elapsed_ms"] >= 0
    assert openrouter["quota_checked"] is False  # /key shows the key's cap, not the balance
    assert openrouter["facts"] == {
        "limit": 100,
        "limit_remaining": 74.5,
        "limit_reset": "monthly",
        "usage": 25.5,
        "usage_monthly": 25.5,
        "is_free_tier": False,
    }
    deepseek = api_status(client, "deepseek")
    assert deepseek["facts"] == {
        "is_available": True,
        "balances": [
            {
                "currency": "CNY",
                "total_balance": "110.00",
                "granted_balance": "0.00",
                "topped_up_balance": "110.00",
            }
        ],
    }
    groq = api_status(client, "groq")
    assert groq["http_status"] == 200 and groq["quota_checked"] is False and groq["facts"] == {}
    unchecked = api_status(client, "huggingface")
    assert (unchecked["http_status"], unchecked["elapsed_ms"], unchecked["quota_checked"]) == (
        None,
        None,
        None,
    )
    assert unchecked["facts"] == {}


def test_the_api_shows_only_facts_that_cannot_carry_a_key(make_app, emulator):
    # Whatever ended up in the stored details (a careless gateway, a future provider entry),
    # only numbers, flags and short words of known names reach the API.
    app = make_app()
    client = signed_in(app)
    key = store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    validate(client, "deepseek")
    hostile = {
        "http_status": "200 " + key,
        "elapsed_ms": 12.5,
        "quota_checked": key,
        "request_id": key,
        "acls": [key],
        "deep_check_model": key,
        "retry_after": key,
        "role": key,
        "limit_reset": key,
        "usage": key,
        "is_available": key,
        "endpoint": key,
        "balances": [
            {"currency": key, "total_balance": "1.00"},
            {"currency": "USD", "total_balance": key, "granted_balance": "2.50", "note": key},
        ],
    }
    with app.app_context():
        user = find_user(EMAIL)
        db.session.execute(
            db.update(UserAPIKey).filter_by(user_id=user.id, provider="deepseek"),
            {"details": hostile},
        )
        db.session.commit()

    status = api_status(client, "deepseek")
    assert key not in str(status) and key[3:11] not in str(status)
    assert (status["http_status"], status["elapsed_ms"], status["quota_checked"]) == (
        None,
        None,
        None,
    )
    assert status["facts"] == {"balances": [{"currency": "USD", "granted_balance": "2.50"}]}
    assert row_of(app, "deepseek").details == hostile  # stored as it was, only not shown
