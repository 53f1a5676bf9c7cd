"""Security log lines as an operator's log shipper sees them: one JSON object per line with
LOG_FORMAT=json, with event, user id, address and reason, and never a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import PASSWORD, AuthActions
from tests.token_helpers import ALICE
from webapp.auth.services import find_user
from webapp.logs import JSONFormatter, app_handler

WRONG = "wrong password " + "x" * 8


@pytest.fixture
def json_app(make_app):
    return make_app(LOG_FORMAT="json", LOGIN_FAILURE_WARN_AFTER=3)


@pytest.fixture
def written() -> Iterator[Callable[[], list[dict]]]:
    """What the app's own log handler has written during the test, as parsed JSON lines.

    The handler is shared by every app and takes the format of the newest:
    build the LOG_FORMAT=json app in the test.
    """
    handler = app_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)

    def read() -> list[dict]:
        assert isinstance(handler.formatter, JSONFormatter)
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    read.raw = stream.getvalue  # type: ignore[attr-defined]
    yield read
    handler.setStream(previous)


def events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line.get("event") == name]


def test_failed_logins_are_json_lines_with_user_ip_and_reason(json_app, written):
    client = json_app.test_client()
    AuthActions(client).register(ALICE)
    stranger = AuthActions(json_app.test_client())
    stranger.login(ALICE, password=WRONG)
    stranger.login("nobody@example.com", password=WRONG)
    with json_app.app_context():
        alice_id = find_user(ALICE).id
    failed = events(written(), "auth.login_failed")
    assert [(f["user_id"], f["reason"]) for f in failed] == [
        (alice_id, "bad_password"),
        (None, "unknown_email"),
    ]
    assert all(f["ip"] == "127.0.0.1" and f["level"] == "info" for f in failed)
    raw = written.raw()
    assert WRONG not in raw and "nobody@example.com" not in raw and PASSWORD not in raw


def test_repeated_failures_for_one_account_become_a_warning(json_app, written):
    AuthActions(json_app.test_client()).register(ALICE)
    for _ in range(4):
        AuthActions(json_app.test_client()).login(ALICE, password=WRONG)
    lines = written()
    assert len(events(lines, "auth.login_failed")) == 2
    repeated = events(lines, "auth.login_failures_repeated")
    assert [r["failures"] for r in repeated] == [3, 4]
    assert all(r["level"] == "warning" and r["reason"] == "bad_password" for r in repeated)


def test_refused_access_is_logged_with_its_reason(json_app, written):
    client = json_app.test_client()
    AuthActions(client).register(ALICE)
    assert client.get("/admin/keys").status_code == 403
    lines = written()
    (denied,) = events(lines, "access.denied")
    assert denied["reason"] == "admin_only" and denied["level"] == "warning"
    assert denied["user_id"] is not None and denied["ip"] == "127.0.0.1"
    assert denied["target"] == "admin.keys"


def test_a_wrong_setup_token_is_logged(make_app, written):
    app = make_app(fresh=True, LOG_FORMAT="json")
    client = app.test_client()
    client.get("/setup")
    response = client.post("/setup/token", data={"token": "khs_guess"})
    assert response.status_code == 400
    lines = written()
    (denied,) = events(lines, "access.denied")
    assert denied["reason"] == "setup_token" and denied["ip"] == "127.0.0.1"
    assert "khs_guess" not in written.raw()


def test_a_failed_key_check_is_logged_without_the_key(make_app, emulator, written):
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()
    AuthActions(client).register(ALICE)
    key = emulator.valid_key("groq")
    client.post("/keys/groq", data={"api_key": key})
    emulator.register("groq", key, state="revoked")
    client.post("/keys/groq/validate")
    emulator.set_mode("groq", "down")
    client.post("/keys/validate-all")
    lines = written()
    failed = events(lines, "key.validation_failed")
    assert [(f["provider"], f["reason"], f["trigger"]) for f in failed] == [
        ("groq", "invalid", "manual"),
        ("groq", "provider_error", "all"),
    ]
    assert all(f["level"] == "warning" and f["ip"] == "127.0.0.1" for f in failed)
    assert failed[0]["http_status"] == 400 and failed[0]["user_id"] is not None  # restricted
    assert key not in written.raw() and key[-12:] not in written.raw()
