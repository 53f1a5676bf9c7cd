"""What the last check answered, how long it took, what it learnt: on the pages and in the API."""

from __future__ import annotations

import json
import re

import pytest

from tests.emulator_answers import OPENROUTER, Reply
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


def _strict_json(response) -> dict:
    """The body as a browser's JSON.parse reads it: NaN and Infinity are not JSON."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


#: a whole number Python reads exactly and no float holds (``%.2f`` on a page would fail)
HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    "numbers",
    [
        # a gateway (or a provider's bad day) answering NaN, Infinity or past a float's range
        '"limit": 1e999, "limit_remaining": Infinity, "usage": NaN',
        # whole numbers no page could format, or past what a browser reads exactly
        f'"limit": {HUGE}, "limit_remaining": -{HUGE}, "usage": {HUGE},'
        ' "usage_monthly": 9007199254740993',
    ],
)
def test_numbers_json_cannot_carry_are_not_kept_from_an_answer(
    make_app, emulator, monkeypatch, numbers
):
    # The key is judged, the odd numbers are dropped, the status stays JSON, the page opens.
    def odd(key: str) -> Reply:
        return Reply(
            200, f'{{"data": {{"label": "x", {numbers}, "is_free_tier": false}}}}', raw=True
        )

    monkeypatch.setitem(OPENROUTER, "valid", odd)
    app = make_app()
    client = signed_in(app)
    response = client.post(
        "/api/api-keys/set",
        json={"provider": "openrouter", "api_key": emulator.valid_key("openrouter")},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    [status] = [
        s
        for s in _strict_json(client.get("/api/api-keys/status"))["providers"]
        if s["provider"] == "openrouter"
    ]
    assert status["status"] == "valid"
    assert status["facts"] == {"limit": None, "limit_remaining": None, "is_free_tier": False}
    assert HUGE not in json.dumps(row_of(app, "openrouter").details)
    dashboard = client.get("/keys/")
    assert dashboard.status_code == 200
    assert "Valid" in dashboard_row(page(dashboard), "openrouter")


def _checked_then_changed(make_app, emulator, **values):
    """A client whose OpenRouter key was checked, and ``values`` written into its details
    afterwards as an older Keyhold might have stored them."""
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openrouter", emulator.valid_key("openrouter"))
    validate(client, "openrouter")
    with app.app_context():
        row = db.session.scalar(db.select(UserAPIKey).filter_by(provider="openrouter"))
        row.details = {**row.details, **values}
        db.session.commit()
    return client


def test_whole_numbers_past_a_float_stored_before_are_not_shown(make_app, emulator):
    client = _checked_then_changed(
        make_app, emulator, usage=int(HUGE), limit=-int(HUGE), elapsed_ms=2**60
    )
    status = api_status(client, "openrouter")
    assert "usage" not in status["facts"] and "limit" not in status["facts"]
    assert status["elapsed_ms"] is None
    dashboard = client.get("/keys/")
    assert dashboard.status_code == 200
    assert HUGE not in page(dashboard)


def test_numbers_stored_before_are_not_shown(make_app, emulator):
    # Written as SQLite's JSON would have kept them; PostgreSQL refuses such JSON outright.
    sqlite = make_app().config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    odd = {"usage": float("nan"), "limit": float("inf")} if sqlite else {}
    client = _checked_then_changed(make_app, emulator, **odd)
    status = _strict_json(client.get("/api/api-keys/status"))
    [openrouter] = [s for s in status["providers"] if s["provider"] == "openrouter"]
    assert "usage" not in openrouter["facts"] or openrouter["facts"]["usage"] == 25.5
    assert dashboard_row(page(client.get("/keys/")), "openrouter")
