"""Validate-all: every stored key checked at once, as long as the slowest check, not their sum."""

from __future__ import annotations

import time

from sqlalchemy import event

from tests.validation_helpers import (
    badge,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
)
from webapp.audit.models import AuditEvent
from webapp.extensions import db
from webapp.keys.models import UserAPIKey

SIX = ["openai", "anthropic", "gemini", "groq", "mistral", "deepseek"]


def test_six_slow_providers_take_about_as_long_as_one(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    for provider in SIX:
        store_key(app, emulator, provider, emulator.valid_key(provider))
        emulator.slow(provider, 1.0)

    start = time.perf_counter()
    response = client.post("/keys/validate-all", follow_redirects=True)
    elapsed = time.perf_counter() - start

    assert elapsed < 3.0, f"validate-all took {elapsed:.1f}s for six 1 s checks"
    html = page(response)
    assert "Checked 6 key(s): 6 valid." in html
    for provider in SIX:
        assert badge(dashboard_row(html, provider)) == "Valid"
        assert row_of(app, provider).status == "valid"
    assert len(emulator.received()) == 6
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).filter_by(action="key.validate")).all()
        assert sorted(e.provider for e in events) == sorted(SIX)
        assert {e.details["trigger"] for e in events} == {"all"}


def test_the_pool_is_bounded(make_app, emulator):
    app = make_app(VALIDATION_MAX_WORKERS=2)
    client = signed_in(app)
    for provider in SIX[:4]:
        store_key(app, emulator, provider, emulator.valid_key(provider))
        emulator.slow(provider, 0.8)
    start = time.perf_counter()
    client.post("/keys/validate-all")
    elapsed = time.perf_counter() - start
    # Two at a time: four 0.8 s checks need two rounds (1.6 s); all at once would take one
    # (0.8 s), one at a time four (3.2 s).
    assert 1.6 <= elapsed < 2.6, f"validate-all took {elapsed:.1f} s"
    assert emulator.most_at_once == 2


def test_mixed_results_are_each_recorded(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    store_key(app, emulator, "groq")  # unknown to the provider
    store_key(app, emulator, "cohere", emulator.valid_key("cohere"))
    emulator.set_mode("cohere", "down")
    store_key(app, emulator, "openrouter", emulator.register("openrouter", state="quota_exhausted"))

    html = page(client.post("/keys/validate-all", follow_redirects=True))
    assert "Checked 4 key(s):" in html
    assert badge(dashboard_row(html, "openai")) == "Valid"
    assert badge(dashboard_row(html, "groq")) == "Invalid"
    assert badge(dashboard_row(html, "cohere")) == "Provider error"
    assert badge(dashboard_row(html, "openrouter")) == "Out of credit"
    assert badge(dashboard_row(html, "mistral")) == "No key"


def test_nothing_to_check(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    html = page(client.post("/keys/validate-all", follow_redirects=True))
    assert "You have no stored keys to check." in html
    assert emulator.received() == []


def test_dashboard_offers_the_buttons(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    html = page(client.get("/keys/"))
    assert "Validate all" not in html  # nothing stored yet
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    html = page(client.get("/keys/"))
    assert 'action="/keys/validate-all"' in html
    openai, deepseek = dashboard_row(html, "openai"), dashboard_row(html, "deepseek")
    assert 'action="/keys/openai/validate"' in openai and "Deep check" in openai
    assert "gpt-4o-mini" in openai and "billed to this key" in openai
    assert 'action="/keys/deepseek/validate"' in deepseek and "Deep check" not in deepseek
    assert "Validate" not in dashboard_row(html, "groq")  # no key, nothing to validate
    assert "<script" not in html and "style=" not in html


def test_valid_openrouter_and_deepseek_show_credit(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openrouter", emulator.valid_key("openrouter"))
    store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    html = page(client.post("/keys/validate-all", follow_redirects=True))
    openrouter = dashboard_row(html, "openrouter")
    assert "Credit used: $25.50 of a $100.00 limit ($74.50 left)" in openrouter
    assert "Quota not checked" in openrouter  # the key's cap, not the account's balance
    assert "Balance: 110.00 CNY" in dashboard_row(html, "deepseek")


def test_a_check_answer_in_an_odd_shape_shows_nothing_and_breaks_no_page(make_app, emulator):
    """Whatever a provider sent is stored (scrubbed); the dashboard shows only what the API
    would, so a balance that is not a list or a usage that is not a number cannot break it."""
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "deepseek", emulator.valid_key("deepseek"))
    store_key(app, emulator, "openrouter", emulator.valid_key("openrouter"))
    odd = {
        "deepseek": {"balances": None, "is_available": "yes", "http_status": True},
        "openrouter": {"usage": "lots", "limit": "none", "elapsed_ms": "12", "retry_after": 5},
    }
    with app.app_context():
        for provider, details in odd.items():
            row = db.session.scalar(db.select(UserAPIKey).filter_by(provider=provider))
            row.details = details
        db.session.commit()

    shapes = [
        (None, None),
        (0, None),
        ("110 CNY", None),
        ([1, "x", {"currency": "usd"}], "Balance: none"),  # a list, but no entry to show
    ]
    for shape, expected in shapes:
        with app.app_context():
            row = db.session.scalar(db.select(UserAPIKey).filter_by(provider="deepseek"))
            row.details = {**odd["deepseek"], "balances": shape}
            db.session.commit()
        response = client.get("/keys/")
        assert response.status_code == 200, shape
        deepseek = dashboard_row(page(response), "deepseek")
        assert "HTTP True" not in deepseek
        if expected is None:
            assert "Balance" not in deepseek, shape
        else:
            assert expected in deepseek and "usd" not in deepseek
    openrouter = dashboard_row(page(response), "openrouter")
    assert "Credit used" not in openrouter and "lots" not in openrouter
    assert "12 ms" not in openrouter and "wait" not in openrouter
    api = client.get("/api/api-keys/status").get_json()["providers"]
    assert {p["provider"]: p["facts"] for p in api if p["has_key"]} == {
        "deepseek": {"balances": []},
        "openrouter": {},
    }


def _unreadable(app, provider: str) -> None:
    """Move a stored key to another provider's row: its sealed bytes no longer match it."""
    with app.app_context():
        db.session.execute(
            db.update(UserAPIKey).filter_by(provider=provider).values(provider="openai")
        )
        db.session.commit()


def _failed_checks(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(
            db.select(AuditEvent).filter_by(action="key.validate", outcome="failed")
        ).all()


def test_an_unreadable_key_is_named_and_its_failed_check_audited(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    _unreadable(app, "groq")
    html = page(client.post("/keys/validate-all", follow_redirects=True))
    assert "Checked 1 key(s): 1 valid." in html
    assert "Could not decrypt (not checked): OpenAI." in html
    [failed] = _failed_checks(app)
    assert failed.provider == "openai" and failed.details["reason"] == "key_unreadable"
    assert failed.details["trigger"] == "all"
    assert len(emulator.received()) == 1  # mistral's check only


def test_a_key_deleted_once_the_unreadable_one_is_on_record_is_not_a_server_error(
    make_app, emulator
):
    # The failed check of the unreadable key commits first; the other tab's delete lands
    # right then, before the remaining key is sent to its provider.
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    _unreadable(app, "groq")
    deleted: list[bool] = []

    def delete_mistral(session) -> None:
        if not deleted:
            deleted.append(True)
            with app.app_context(), db.engine.begin() as connection:
                connection.execute(db.delete(UserAPIKey).filter_by(provider="mistral"))

    with app.app_context():
        registry = db.session.registry().__class__  # every session's class
    event.listen(registry, "after_commit", delete_mistral)
    try:
        response = client.post("/keys/validate-all")
    finally:
        event.remove(registry, "after_commit", delete_mistral)
    assert deleted and response.status_code == 302
    html = page(client.get("/keys/"))
    assert "Could not decrypt (not checked): OpenAI." in html


def test_only_unreadable_keys_are_not_reported_as_none_stored(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    _unreadable(app, "groq")
    html = page(client.post("/keys/validate-all", follow_redirects=True))
    assert "no stored keys" not in html and "Could not decrypt (not checked): OpenAI." in html
    assert emulator.received() == []


def test_checking_an_unreadable_key_leaves_a_failed_audit_row(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    _unreadable(app, "groq")
    response = client.post("/api/api-keys/validate/openai", json={})
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "key_unreadable"
    [failed] = _failed_checks(app)
    assert failed.provider == "openai" and failed.details["trigger"] == "manual"
    assert emulator.received() == []
