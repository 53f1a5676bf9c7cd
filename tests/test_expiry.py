"""Expiry reminders: set with a key or on their own, shown and flagged, listed by the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.helpers import rows_of, store
from tests.token_helpers import ALICE, audit_rows, call, error_code, issue
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.models import UserAPIKey


def day(offset: int) -> str:
    return (utcnow() + timedelta(days=offset)).date().isoformat()


@pytest.fixture
def alice(user_client):
    return user_client(ALICE)


def test_a_key_saved_with_a_reminder_shows_it_on_the_dashboard(app, alice, emulator):
    key = emulator.valid_key("groq")
    response = alice.post("/keys/groq", data={"api_key": key, "expires_at": day(60)})
    assert response.status_code == 302
    (row,) = rows_of(app, ALICE)
    assert row.expires_at.date().isoformat() == day(60)
    page = alice.get("/keys/").get_data(as_text=True)
    assert f"Expires {day(60)}" in page
    assert "need attention" not in page  # sixty days away is not soon


def test_a_key_expiring_within_a_week_is_flagged(app, alice):
    store(app, ALICE, "openai")
    alice.post("/keys/openai/expiry", data={"expires_at": day(3)})
    page = alice.get("/keys/").get_data(as_text=True)
    assert "Expires in 3 days" in page
    assert "1 of your keys need attention." in page
    assert f"expires in 3 days ({day(3)})" in page


def test_a_key_the_provider_rejects_is_flagged_too(app, alice):
    store(app, ALICE, "groq")  # unknown to the emulator: the check will reject it
    alice.post("/keys/groq/validate")
    page = alice.get("/keys/").get_data(as_text=True)
    assert "the provider rejects this key; replace it." in page


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (day(-5), "Pick a future date."),
        (day(4000), "Pick a date within ten years."),
        ("31/01/2027", "Not a valid date value."),
    ],
)
def test_a_bad_reminder_is_refused_next_to_the_field(app, alice, emulator, value, message):
    key = emulator.valid_key("groq")
    response = alice.post("/keys/groq", data={"api_key": key, "expires_at": value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="expires_at-error"' in html and message in html
    assert rows_of(app, ALICE) == []
    assert emulator.received() == []  # refused before the provider was asked


def test_the_reminder_changes_without_replacing_the_key(app, alice):
    store(app, ALICE, "openai")
    (before,) = rows_of(app, ALICE)
    form = alice.get("/keys/openai").get_data(as_text=True)
    assert "No reminder is set for this key." in form
    response = alice.post("/keys/openai/expiry", data={"expires_at": day(30)})
    assert response.status_code == 302
    (after,) = rows_of(app, ALICE)
    assert after.expires_at.date().isoformat() == day(30)
    assert (after.encrypted_key, after.updated_at) == (before.encrypted_key, before.updated_at)
    assert f"due to expire on <strong>{day(30)}</strong>" in alice.get("/keys/openai").text
    (event,) = audit_rows(app, "key.expiry")
    assert event.details["from"] is None and event.details["to"] == day(30)
    assert event.details["hint"] == before.key_hint
    cleared = alice.post("/keys/openai/expiry", data={"expires_at": ""})
    assert cleared.status_code == 302
    assert rows_of(app, ALICE)[0].expires_at is None


def test_a_bad_reminder_on_its_own_form_changes_nothing(app, alice):
    store(app, ALICE, "openai")
    alice.post("/keys/openai/expiry", data={"expires_at": day(30)})
    response = alice.post("/keys/openai/expiry", data={"expires_at": day(-30)})
    assert response.status_code == 400
    assert "Pick a future date." in response.get_data(as_text=True)
    assert rows_of(app, ALICE)[0].expires_at.date().isoformat() == day(30)


def test_no_reminder_for_a_key_that_is_not_there(app, alice, user_client):
    assert alice.post("/keys/openai/expiry", data={"expires_at": day(3)}).status_code == 404
    user_client("bob@example.com")
    store(app, "bob@example.com", "openai")
    # Bob's key is not Alice's: still nothing to set a reminder on.
    assert alice.post("/keys/openai/expiry", data={"expires_at": day(3)}).status_code == 404
    assert alice.post("/keys/nosuch/expiry", data={"expires_at": day(3)}).status_code == 404


def test_replacing_a_key_replaces_its_reminder(app, alice, emulator):
    store(app, ALICE, "groq")
    alice.post("/keys/groq/expiry", data={"expires_at": day(30)})
    # The form comes with the current reminder filled in.
    assert f'value="{day(30)}"' in alice.get("/keys/groq").get_data(as_text=True)
    alice.post("/keys/groq", data={"api_key": emulator.valid_key("groq"), "expires_at": ""})
    assert rows_of(app, ALICE)[0].expires_at is None


def test_the_api_sets_reminders_with_the_key_and_on_their_own(app, alice):
    body = {"provider": "openai", "api_key": "sk-proj-" + "A1b2C3d4" * 6, "validate": False}
    created = alice.post("/api/api-keys/set", json={**body, "expires_at": day(5)})
    assert created.status_code == 201
    assert created.get_json()["expires_at"] == day(5) + "T00:00:00Z"
    assert created.get_json()["expiring_soon"] is True
    later = alice.post("/api/api-keys/expiry/openai", json={"expires_at": day(90)})
    assert later.status_code == 200
    assert (later.get_json()["expires_at"], later.get_json()["expiring_soon"]) == (
        day(90) + "T00:00:00Z",
        False,
    )
    cleared = alice.post("/api/api-keys/expiry/openai", json={"expires_at": None})
    assert cleared.get_json()["expires_at"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"expires_at": "soon"}, 422, "invalid_input"),
        ({"expires_at": ""}, 422, "invalid_input"),  # a date or null: "" is neither
        ({"expires_at": day(-3)}, 422, "invalid_input"),
        # Times UTC cannot hold once their offset is applied: judged, not a crash.
        ({"expires_at": "0001-01-01T00:00:00+01:00"}, 422, "invalid_input"),
        ({"expires_at": "9999-12-31T23:00:00-05:00"}, 422, "invalid_input"),
        ({"expires_at": 20270131}, 400, "invalid_body"),
        ({}, 400, "invalid_body"),
    ],
)
def test_the_api_refuses_bad_reminders(app, alice, body, status, code):
    store(app, ALICE, "openai")
    assert (
        alice.post("/api/api-keys/expiry/openai", json={"expires_at": day(30)}).status_code == 200
    )
    response = alice.post("/api/api-keys/expiry/openai", json=body)
    assert response.status_code == status and error_code(response) == code
    assert "expires_at" in response.get_json()["error"]["fields"]
    assert rows_of(app, ALICE)[0].expires_at.date().isoformat() == day(30)  # kept


def test_a_key_sent_with_an_empty_reminder_is_refused(app, alice):
    body = {"provider": "openai", "api_key": "sk-proj-" + "A1b2C3d4" * 6, "validate": False}
    response = alice.post("/api/api-keys/set", json={**body, "expires_at": ""})
    assert response.status_code == 422 and "expires_at" in response.get_json()["error"]["fields"]
    assert rows_of(app, ALICE) == []


def test_the_api_reminder_needs_a_stored_key(alice):
    missing = alice.post("/api/api-keys/expiry/openai", json={"expires_at": day(3)})
    assert missing.status_code == 404 and error_code(missing) == "key_not_found"
    unknown = alice.post("/api/api-keys/expiry/nosuch", json={"expires_at": day(3)})
    assert unknown.status_code == 404 and error_code(unknown) == "unknown_provider"


def test_the_api_lists_keys_expiring_within_days(app, alice):
    for provider, offset in (("openai", 20), ("groq", 2), ("mistral", 200)):
        store(app, ALICE, provider)
        alice.post(f"/api/api-keys/expiry/{provider}", json={"expires_at": day(offset)})
    store(app, ALICE, "cohere")  # no reminder: never listed
    soon = alice.get("/api/api-keys/expiring").get_json()
    assert soon["days"] == 7 and [s["provider"] for s in soon["providers"]] == ["groq"]
    month = alice.get("/api/api-keys/expiring?days=30").get_json()
    assert [s["provider"] for s in month["providers"]] == ["groq", "openai"]
    assert all(s["has_key"] and s["masked_key"] for s in month["providers"])


@pytest.mark.parametrize(
    "query", ["days=-1", "days=week", "days=99999", "days=3&x=1", "days=" + "9" * 5000]
)
def test_the_expiring_list_refuses_bad_queries(alice, query):
    response = alice.get(f"/api/api-keys/expiring?{query}")
    assert response.status_code == 400 and error_code(response) == "invalid_query"


def test_tokens_need_the_right_scope_for_reminders(app, alice):
    store(app, ALICE, "openai")
    _, reader = issue(app, ALICE, scopes=["keys:read"])
    _, writer = issue(app, ALICE, scopes=["keys:write"])
    client = app.test_client()
    assert call(client, "GET", "/api/api-keys/expiring", reader).status_code == 200
    refused = call(client, "POST", "/api/api-keys/expiry/openai", reader, json={"expires_at": None})
    assert refused.status_code == 403 and error_code(refused) == "insufficient_scope"
    done = call(client, "POST", "/api/api-keys/expiry/openai", writer, json={"expires_at": day(9)})
    assert done.status_code == 200


def _key_form_reminder(html: str) -> str | None:
    """The reminder the add/replace form comes filled in with (the first form on the page)."""
    key_form = html.split('name="api_key"', 1)[1].split("</form>", 1)[0]
    match = re.search(r'id="expires_at"[^>]*value="([^"]*)"', key_form)
    return match.group(1) if match else None


def test_a_key_past_its_reminder_can_be_replaced_from_its_form(app, alice, emulator):
    # The reminder date has passed: that is why the key is being replaced. The form must not
    # come filled in with a date it would then refuse.
    store(app, ALICE, "groq")
    with app.app_context():
        row = db.session.scalar(db.select(UserAPIKey))
        row.expires_at = utcnow() - timedelta(days=3)
        db.session.commit()
    html = alice.get("/keys/groq").get_data(as_text=True)
    assert _key_form_reminder(html) in (None, "")
    assert f"due to expire on <strong>{day(-3)}</strong>" in html  # still shown as it stands
    as_filled_in = {"api_key": emulator.valid_key("groq"), "expires_at": _key_form_reminder(html)}
    response = alice.post("/keys/groq", data={k: v or "" for k, v in as_filled_in.items()})
    assert response.status_code == 302
    assert rows_of(app, ALICE)[0].expires_at is None


def test_a_refused_reminder_keeps_the_stored_one_on_the_key_form(app, alice):
    store(app, ALICE, "openai")
    alice.post("/keys/openai/expiry", data={"expires_at": day(30)})
    assert _key_form_reminder(alice.get("/keys/openai").text) == day(30)
    refused = alice.post("/keys/openai/expiry", data={"expires_at": day(-30)})
    assert refused.status_code == 400
    assert _key_form_reminder(refused.get_data(as_text=True)) == day(30)
