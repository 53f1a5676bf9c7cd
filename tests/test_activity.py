"""Reading the audit trail: /activity (your own), /admin/audit (everyone's), GET /api/audit."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN_EMAIL, PASSWORD, AuthActions
from tests.fakekeys import fake_key
from tests.helpers import store
from tests.token_helpers import ALICE, BOB, audit_rows, call, error_code, issue
from webapp.auth.services import find_user
from webapp.crypto import mask_key

EVENT_ROW = re.compile(r'<tr id="event-(\d+)" class="event event-(\w+)" data-action="([a-z_.]+)"')


def shown(response) -> list[tuple[int, str, str]]:
    """(id, outcome, action) of each event row on a page, top to bottom."""
    html = response.get_data(as_text=True)
    return [(int(i), outcome, action) for i, outcome, action in EVENT_ROW.findall(html)]


@pytest.fixture
def alice(user_client):
    return user_client(ALICE)


@pytest.fixture
def bob(user_client):
    return user_client(BOB)


def test_activity_shows_my_own_events_newest_first(app, alice, bob):
    alice.post("/keys/groq", data={"api_key": fake_key("groq")})  # unknown key: rejected
    store(app, ALICE, "openai")
    bobs_key = store(app, BOB, "anthropic")
    alice.post("/keys/openai/delete")
    response = alice.get("/activity")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    events = shown(response)
    actions = [a for _, _, a in events]
    assert actions == ["key.delete", "key.set", "key.validate", "user.register"]
    assert [i for i, _, _ in events] == sorted((i for i, _, _ in events), reverse=True)
    html = response.get_data(as_text=True)
    assert "Key deleted" in html and "Account created" in html
    # Bob's key and Bob himself appear nowhere on Alice's page.
    assert BOB not in html and mask_key(bobs_key, "sk-ant-") not in html


def test_failed_and_refused_events_are_marked(app, alice):
    AuthActions(app.test_client()).login(ALICE, password="not the password at all")
    events = shown(alice.get("/activity"))
    assert events[0][1:] == ("denied", "auth.login")
    assert "Refused" in alice.get("/activity").get_data(as_text=True)


def test_activity_filters_by_provider_and_action(app, alice):
    store(app, ALICE, "openai")
    store(app, ALICE, "groq")
    store(app, ALICE, "groq")
    by_provider = shown(alice.get("/activity?provider=groq"))
    assert [a for _, _, a in by_provider] == ["key.replace", "key.set"]
    by_action = shown(alice.get("/activity?action=key.set"))
    assert [a for _, _, a in by_action] == ["key.set", "key.set"]
    family = shown(alice.get("/activity?action=key"))
    assert {a for _, _, a in family} == {"key.set", "key.replace"}
    both = shown(alice.get("/activity?provider=openai&action=key.replace"))
    assert both == []
    assert "No events match." in alice.get("/activity?provider=openai&action=key.replace").text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("provider=nosuch", "Unknown provider."),
        ("action=key.explode", "Unknown action."),
        ("before=yesterday", "An event id, or a time"),
        ("before=0001-01-01T00:00:00%2B01:00", "between the years 1 and 9999"),
        ("before=" + "9" * 5000, "An event id, or a time"),
        ("before=2147483648", "An event id, or a time"),  # past the largest id
    ],
)
def test_a_bad_filter_is_a_clear_400(alice, query, message):
    response = alice.get(f"/activity?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert shown(response) == []


def test_activity_pages_go_back_in_time(make_app, user_client):
    app = make_app(AUDIT_PAGE_SIZE=2)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    for provider in ("openai", "groq", "mistral"):
        store(app, ALICE, provider)
    first = client.get("/activity")
    assert [a for _, _, a in shown(first)] == ["key.set", "key.set"]
    older = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = client.get(older)
    assert [a for _, _, a in shown(second)] == ["key.set", "user.register"]
    assert {i for i, _, _ in shown(first)}.isdisjoint(i for i, _, _ in shown(second))
    assert 'rel="next"' not in second.text and "Newest" in second.text


def test_the_admin_audit_log_shows_everyone_with_names(app, alice, bob, admin_client):
    store(app, ALICE, "openai")
    store(app, BOB, "groq")
    response = admin_client.get("/admin/audit")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert ALICE in html and BOB in html and ADMIN_EMAIL in html
    actions = [a for _, _, a in shown(response)]
    assert actions[:3] == ["key.set", "key.set", "auth.login"]  # Bob's, Alice's, the admin
    only_bob = admin_client.get(f"/admin/audit?user={BOB}&action=key.set")
    assert [a for _, _, a in shown(only_bob)] == ["key.set"]
    assert '<td data-label="Provider">groq</td>' in only_bob.text
    assert '<td data-label="Provider">openai</td>' not in only_bob.text
    unknown = admin_client.get("/admin/audit?user=nobody@example.com")
    assert unknown.status_code == 400 and "No user with that email address" in unknown.text


def test_the_admin_audit_log_is_for_admins_only(alice):
    response = alice.get("/admin/audit")
    assert response.status_code == 403
    assert ALICE not in response.get_data(as_text=True).replace(
        f'<li class="nav-user" title="Signed in">{ALICE}</li>', ""
    )


def test_the_api_lists_my_events(app, alice, bob):
    store(app, ALICE, "openai")
    store(app, BOB, "groq")
    response = alice.get("/api/audit")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    actions = [e["action"] for e in body["events"]]
    assert actions == ["key.set", "user.register"]
    newest = body["events"][0]
    assert newest["provider"] == "openai" and newest["label"] == "Key added"
    assert newest["details"]["hint"].startswith("sk-proj-…")
    assert "row_hash" not in newest and "prev_hash" not in newest
    assert body["next_before"] is None


def test_the_api_pages_and_filters(app, alice):
    for provider in ("openai", "groq", "mistral"):
        store(app, ALICE, provider)
    page = alice.get("/api/audit?action=key.set&limit=2").get_json()
    assert [e["provider"] for e in page["events"]] == ["mistral", "groq"]
    rest = alice.get(f"/api/audit?action=key.set&limit=2&before={page['next_before']}")
    assert [e["provider"] for e in rest.get_json()["events"]] == ["openai"]
    assert rest.get_json()["next_before"] is None
    by_time = alice.get("/api/audit?before=2000-01-01T00:00:00Z").get_json()
    assert by_time["events"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=1_0", "limit"),  # Python's way of writing 10, not a query's
        ("limit=%D9%A5", "limit"),  # an Arabic-Indic five
        ("limit=+5", "limit"),
        ("provider=nosuch", "provider"),
        ("action=nope", "action"),
        ("before=2026-01-01T00:00:00", "before"),
        ("before=9999-12-31T23:00:00-05:00", "before"),
        ("before=" + "9" * 5000, "before"),
        ("before=2147483648", "before"),
        ("colour=blue", "colour"),
        ("user=", "user"),  # naming nobody: not every user, nor the caller
        ("user=%20", "user"),
    ],
)
def test_the_api_refuses_bad_queries_with_400(alice, query, field):
    response = alice.get(f"/api/audit?{query}")
    assert response.status_code == 400
    assert error_code(response) == "invalid_query"
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("user", ["9" * 5000, "2147483648"])
def test_an_admins_user_filter_past_any_id_names_nobody(admin_client, user):
    api = admin_client.get(f"/api/audit?user={user}")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "user_not_found"
    page = admin_client.get(f"/admin/audit?user={user}")
    assert page.status_code == 400 and "No user with that email address" in page.text


def test_only_admins_may_ask_for_another_users_events(app, alice, bob, admin_client):
    store(app, BOB, "groq")
    refused = alice.get(f"/api/audit?user={BOB}")
    assert refused.status_code == 403 and error_code(refused) == "admin_only"
    bobs = admin_client.get(f"/api/audit?user={BOB}").get_json()["events"]
    assert {e["subject_user_id"] for e in bobs} == {bobs[0]["subject_user_id"]}
    assert "key.set" in [e["action"] for e in bobs]
    everyone = admin_client.get("/api/audit?user=*&action=user.register").get_json()["events"]
    assert len(everyone) == 2
    missing = admin_client.get("/api/audit?user=nobody@example.com")
    assert missing.status_code == 404 and error_code(missing) == "user_not_found"


def test_a_token_with_audit_read_reads_its_owners_events_only(app, alice, bob):
    store(app, BOB, "groq")
    _, token = issue(app, ALICE, scopes=["audit:read"])
    response = call(app.test_client(), "GET", "/api/audit", token)
    assert response.status_code == 200
    actions = [e["action"] for e in response.get_json()["events"]]
    assert actions == ["token.create", "user.register"]
    admin_id, admin_token = issue(app, ADMIN_EMAIL, scopes=["audit:read"])
    other = call(app.test_client(), "GET", f"/api/audit?user={BOB}", admin_token)
    assert other.status_code == 403 and error_code(other) == "token_not_allowed"
    # Refused like any other token overreach: the admin's trail shows the attempt.
    (denied,) = audit_rows(app, "access.denied")
    with app.app_context():
        assert denied.actor_user_id == find_user(ADMIN_EMAIL).id
    assert denied.details["token_id"] == admin_id and denied.details["needed"] == "session-only"
    _, reader = issue(app, ALICE, scopes=["keys:read"])
    lacking = call(app.test_client(), "GET", "/api/audit", reader)
    assert lacking.status_code == 403 and error_code(lacking) == "insufficient_scope"


def test_the_pages_are_linked_from_the_navigation(alice, admin_client):
    assert 'href="/activity"' in alice.get("/keys/").text
    assert 'href="/admin/audit"' not in alice.get("/keys/").text
    assert 'href="/admin/audit"' in admin_client.get("/keys/").text


def test_signing_in_elsewhere_with_a_wrong_password_shows_in_my_activity(app, alice):
    stranger = AuthActions(app.test_client())
    stranger.login(ALICE, password="guessing at " + PASSWORD)
    body = alice.get("/api/audit?action=auth.login").get_json()
    assert body["events"][0]["outcome"] == "denied"
    assert body["events"][0]["details"] == {"reason": "bad_password"}
