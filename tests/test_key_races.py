"""Two tabs of one user changing the same key at once: a clear answer, never a 500, and the
newer change kept.

The other tab's change is made on a connection of its own at the exact moment named (just
before a statement of this request runs, or just after it commits), on both engines.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import event, text

from tests.fakekeys import fake_key
from tests.helpers import rows_of, store
from webapp.audit.models import AuditEvent
from webapp.auth.services import find_user
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey
from webapp.keys.resolve import get_key_for

EMAIL = "alice@example.com"
#: how long a racing change may take when nothing holds it up
RACE_WAIT = 2.0


def other_tab(app, sql: str) -> Callable[[], None]:
    """A change another request commits on a connection of its own."""

    def change() -> None:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(text(sql))

    return change


@contextmanager
def every_time_before(
    app, statement: str, change: Callable[[Any, Any, str], None]
) -> Iterator[list[bool]]:
    """Run ``change(cursor, parameters, sql)``, with a cursor of this request's own connection,
    each time just before it runs a statement that starts with ``statement`` (``sql``, with
    its ``parameters``): another writer that gets there first every time. Yields one entry
    per time."""
    seen: list[bool] = []

    def hook(conn, cursor, sql, parameters, *args) -> None:
        if sql.lstrip().upper().startswith(statement):
            seen.append(True)
            change(conn.connection.dbapi_connection.cursor(), parameters, sql)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


@contextmanager
def just_before(app, statement: str, change: Callable[[], None]) -> Iterator[None]:
    """Run ``change`` once, just before this request first runs a statement that starts with
    ``statement``."""
    done: list[bool] = []

    def once(*_) -> None:
        if not done:
            done.append(True)
            change()

    with every_time_before(app, statement, once):
        yield
    assert done, f"no {statement} ran"


@contextmanager
def just_after_commit(change: Callable[[], None]) -> Iterator[None]:
    done: list[bool] = []

    def hook(session) -> None:
        if not done:
            done.append(True)
            change()

    event.listen(db.session.registry().__class__, "after_commit", hook)
    try:
        yield
    finally:
        event.remove(db.session.registry().__class__, "after_commit", hook)
    assert done, "nothing was committed"


@contextmanager
def racing(app, statement: str, change: Callable[[], object]) -> Iterator[None]:
    """Start ``change`` (another request, in a thread of its own) just before this request
    first runs a statement that starts with ``statement``, and give it RACE_WAIT seconds to
    finish before this request goes on. A change that must wait for this request's locks
    finishes after it instead, and is waited for at the end."""
    started: list[threading.Thread] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            change()
        except BaseException as exc:  # raised in the test's own thread below
            failed.append(exc)

    def start() -> None:
        started.append(threading.Thread(target=run))
        started[0].start()
        started[0].join(timeout=RACE_WAIT)

    try:
        with just_before(app, statement, start):
            yield
    finally:
        for thread in started:
            thread.join()
    if failed:
        raise failed[0]


def audit_trail(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            db.select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.action.like("key.%"))
            .order_by(AuditEvent.id)
        ).all()
    return [tuple(row) for row in rows]


def test_a_key_replaced_while_another_tab_deletes_it_is_stored(app, user_client):
    alice = user_client(EMAIL)
    store(app, EMAIL, "groq")
    new = fake_key("groq")
    delete = other_tab(app, "DELETE FROM user_api_keys")
    # Deleted after the save was sent and before it takes the account (its first write).
    with just_before(app, "UPDATE USERS", delete):
        response = alice.post(
            "/api/api-keys/set", json={"provider": "groq", "api_key": new, "validate": False}
        )
    assert response.status_code == 201, response.get_data(as_text=True)
    [row] = rows_of(app, EMAIL)
    assert row.key_hint.endswith(new[-4:])
    assert audit_trail(app)[-1] == ("key.set", "ok")


def test_saving_the_stored_key_again_while_another_tab_saves_a_new_one_keeps_one_whole_key(
    app, user_client
):
    # The re-save's row differs from the stored one in its ciphertext alone: written as a
    # difference from a row the other tab replaced meanwhile, it mixed the two keys.
    alice = user_client(EMAIL)
    first, second = fake_key("openai"), fake_key("openai")
    store(app, EMAIL, "openai", first)
    body = {"provider": "openai", "validate": False}

    def other_tab_saves() -> None:
        response = alice.post("/api/api-keys/set", json={**body, "api_key": second})
        assert response.status_code == 200, response.get_data(as_text=True)

    with racing(app, "UPDATE USER_API_KEYS SET ENCRYPTED_KEY", other_tab_saves):
        response = alice.post("/api/api-keys/set", json={**body, "api_key": first})
    assert response.status_code == 200
    with app.app_context():
        assert get_key_for(find_user(EMAIL), "openai").value == second  # the later save
    assert alice.post("/api/api-keys/validate/openai", json={}).status_code == 200


def test_a_replacement_does_not_take_a_verdict_on_the_old_key_given_meanwhile(
    app, user_client, emulator
):
    alice = user_client(EMAIL)
    old, new = fake_key("openai"), fake_key("openai")
    emulator.register("openai", old, state="revoked")
    store(app, EMAIL, "openai", old, **emulator.endpoint_config("openai"))

    def other_tab_checks_the_old_key() -> None:
        assert alice.post("/api/api-keys/validate/openai", json={}).status_code == 200

    body = {"provider": "openai", "api_key": new, "validate": False}
    with racing(app, "UPDATE USER_API_KEYS SET ENCRYPTED_KEY", other_tab_checks_the_old_key):
        assert alice.post("/api/api-keys/set", json=body).status_code == 200
    [row] = rows_of(app, EMAIL)
    assert row.key_hint.endswith(new[-4:])
    assert (row.status, row.is_valid, row.last_error) == ("unchecked", None, None)


def test_a_key_deleted_as_its_check_is_recorded_is_not_a_server_error(app, user_client, emulator):
    alice = user_client(EMAIL)
    key = fake_key("groq")
    emulator.register("groq", key)
    store(app, EMAIL, "groq", key, **emulator.endpoint_config("groq"))
    delete = other_tab(app, "DELETE FROM user_api_keys")
    # The check's result is about to be written on the row when the other tab deletes it.
    with racing(app, "UPDATE USER_API_KEYS SET IS_VALID", delete):
        response = alice.post("/api/api-keys/validate/groq", json={})
    assert response.status_code in (200, 404), response.get_data(as_text=True)
    assert rows_of(app, EMAIL) == []


def test_a_save_is_a_save_even_if_the_key_is_deleted_right_after(app, user_client, emulator):
    # The page's message is about what was saved; reading it back must not fail the save.
    alice = user_client(EMAIL)
    delete = other_tab(app, "DELETE FROM user_api_keys")
    with app.app_context(), just_after_commit(delete):
        response = alice.post("/keys/groq", data={"api_key": emulator.valid_key("groq")})
    assert response.status_code == 302
    assert ("key.set", "failed") not in audit_trail(app)


def test_a_reminder_for_a_key_deleted_meanwhile_is_a_clear_not_found(app, user_client):
    alice = user_client(EMAIL)
    store(app, EMAIL, "groq")
    delete = other_tab(app, "DELETE FROM user_api_keys")
    with just_before(app, "UPDATE USER_API_KEYS", delete):
        when = (date.today() + timedelta(days=30)).isoformat()
        response = alice.post("/api/api-keys/expiry/groq", json={"expires_at": when})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "key_not_found"
    assert ("key.expiry", "ok") not in audit_trail(app)


def test_a_delete_does_not_take_the_key_another_tab_just_saved(app, user_client):
    # The delete was asked for the key the page showed; the replacement is newer than that.
    alice = user_client(EMAIL)
    store(app, EMAIL, "groq")
    replace = other_tab(app, "UPDATE user_api_keys SET key_hash = 'replaced-meanwhile'")
    with just_before(app, "DELETE FROM USER_API_KEYS", replace):
        response = alice.delete("/api/api-keys/groq", json={})
    assert response.status_code == 404
    assert "replaced meanwhile" in response.get_json()["error"]["message"]
    [row] = rows_of(app, EMAIL)
    assert row.key_hash == "replaced-meanwhile"
    assert ("key.delete", "ok") not in audit_trail(app)


def _shown(page: str) -> str:
    match = re.search(r'name="shown" type="hidden" value="([0-9a-f]+)"', page)
    assert match, "the confirmation page names no key"
    return match.group(1)


def test_a_confirmation_page_deletes_only_the_key_it_showed(app, user_client):
    alice = user_client(EMAIL)
    first = store(app, EMAIL, "groq")
    page = alice.get("/keys/groq/delete").get_data(as_text=True)
    assert first[-4:] in page
    second = store(app, EMAIL, "groq", fake_key("groq"))  # replaced in another tab
    response = alice.post("/keys/groq/delete", data={"shown": _shown(page)})
    assert response.status_code == 409
    again = response.get_data(as_text=True)
    assert "Your Groq key was replaced after the page was shown" in again  # its name, not id
    assert second[-4:] in again
    [row] = rows_of(app, EMAIL)
    assert second[-4:] in row.key_hint
    assert ("key.delete", "ok") not in audit_trail(app)
    # The page now shows the key stored now, and confirming it deletes that one.
    assert alice.post("/keys/groq/delete", data={"shown": _shown(again)}).status_code == 302
    assert rows_of(app, EMAIL) == []
    assert ("key.delete", "ok") in audit_trail(app)


def test_the_global_key_confirmation_deletes_only_the_key_it_showed(app, admin_client, emulator):
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    page = admin_client.get("/admin/keys/groq/delete").get_data(as_text=True)
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    response = admin_client.post("/admin/keys/groq/delete", data={"shown": _shown(page)})
    assert response.status_code == 409
    assert "replaced after the page was shown" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(GlobalAPIKey).filter_by(provider="groq")) is not None
    fresh = _shown(response.get_data(as_text=True))
    assert admin_client.post("/admin/keys/groq/delete", data={"shown": fresh}).status_code == 302


def test_switching_the_fallback_of_a_global_key_deleted_meanwhile(app, admin_client, emulator):
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    deleted = other_tab(app, "DELETE FROM global_api_keys")
    with just_before(app, "UPDATE GLOBAL_API_KEYS", deleted):
        response = admin_client.post("/admin/keys/groq/fallback", data={"enabled": "off"})
    assert response.status_code == 404
    assert "The global Groq key was deleted meanwhile" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(GlobalAPIKey)) is None


def test_a_reminder_set_on_a_page_left_open_is_not_put_on_the_key_that_replaced_it(
    app, user_client
):
    alice = user_client(EMAIL)
    store(app, EMAIL, "groq")
    page = alice.get("/keys/groq").get_data(as_text=True)
    second = store(app, EMAIL, "groq", fake_key("groq"))  # replaced in another tab
    when = (utcnow() + timedelta(days=30)).date().isoformat()
    response = alice.post("/keys/groq/expiry", data={"expires_at": when, "shown": _shown(page)})
    assert response.status_code == 409
    again = response.get_data(as_text=True)
    assert "Your Groq key was replaced after this page was shown" in again
    assert second[-4:] in again  # the page shows the key stored now
    [row] = rows_of(app, EMAIL)
    assert row.expires_at is None
    assert ("key.expiry", "ok") not in audit_trail(app)
    # From the page as it is now, the reminder goes on the key it shows.
    data = {"expires_at": when, "shown": _shown(again)}
    assert alice.post("/keys/groq/expiry", data=data).status_code == 302
    assert rows_of(app, EMAIL)[0].expires_at.date().isoformat() == when


def test_a_global_key_saved_again_while_another_admin_saves_a_new_one_stays_whole(
    app, admin_client, emulator
):
    first, second = (emulator.register("groq", fake_key("groq")) for _ in range(2))
    assert admin_client.post("/admin/keys/groq", data={"api_key": first}).status_code == 302

    def other_admin_saves() -> None:
        response = admin_client.post("/admin/keys/groq", data={"api_key": second})
        assert response.status_code == 302, response.get_data(as_text=True)

    with racing(app, "UPDATE GLOBAL_API_KEYS SET ENCRYPTED_KEY", other_admin_saves):
        assert admin_client.post("/admin/keys/groq", data={"api_key": first}).status_code == 302
    with app.app_context():
        assert get_key_for(None, "groq").value == second  # the later save, readable


def test_a_global_key_replaced_during_its_delete_is_kept(app, admin_client, emulator):
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    shown = _shown(admin_client.get("/admin/keys/groq/delete").get_data(as_text=True))
    replace = other_tab(app, "UPDATE global_api_keys SET key_hash = 'replaced-meanwhile'")
    with just_before(app, "DELETE FROM GLOBAL_API_KEYS", replace):
        response = admin_client.post("/admin/keys/groq/delete", data={"shown": shown})
    assert response.status_code == 404
    assert "deleted or replaced meanwhile" in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(db.select(GlobalAPIKey).filter_by(provider="groq"))
        assert row is not None and row.key_hash == "replaced-meanwhile"


def _delete_it(table: str) -> Callable[..., None]:
    def change(cursor, parameters, sql) -> None:
        cursor.execute(f"DELETE FROM {table}")

    return change


def _insert_it_first(cursor, parameters, sql) -> None:
    cursor.execute(sql, parameters)


def test_a_replacement_overtaken_twice_is_a_409_and_keeps_the_stored_key(app, user_client):
    alice = user_client(EMAIL)
    stored, new = fake_key("openai"), fake_key("openai")
    store(app, EMAIL, "openai", stored)
    with every_time_before(
        app, "UPDATE USER_API_KEYS SET ENCRYPTED_KEY", _delete_it("user_api_keys")
    ) as seen:
        response = alice.post(
            "/api/api-keys/set", json={"provider": "openai", "api_key": new, "validate": False}
        )
    assert len(seen) == 2  # tried again once, then gave up
    assert response.status_code == 409, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "key_conflict" and "nothing was saved" in error["message"]
    assert new not in response.get_data(as_text=True)
    with app.app_context():
        assert get_key_for(find_user(EMAIL), "openai").value == stored
    assert audit_trail(app)[-1] == ("key.replace", "failed")


def test_a_new_key_overtaken_twice_is_a_clear_page_not_a_server_error(app, user_client, emulator):
    alice = user_client(EMAIL)
    new = emulator.register("groq", fake_key("groq"))
    with every_time_before(app, "INSERT INTO USER_API_KEYS", _insert_it_first) as seen:
        response = alice.post("/keys/groq", data={"api_key": new})
    assert len(seen) == 2
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed this key at the same moment; nothing was saved" in page
    assert new not in page
    assert rows_of(app, EMAIL) == []
    assert audit_trail(app)[-1] == ("key.set", "failed")


def test_a_global_key_overtaken_twice_is_a_409_and_keeps_the_stored_key(
    app, admin_client, emulator
):
    stored, new = (emulator.register("groq", fake_key("groq")) for _ in range(2))
    assert admin_client.post("/admin/keys/groq", data={"api_key": stored}).status_code == 302
    with every_time_before(
        app, "UPDATE GLOBAL_API_KEYS SET ENCRYPTED_KEY", _delete_it("global_api_keys")
    ) as seen:
        response = admin_client.post("/admin/keys/groq", data={"api_key": new})
    assert len(seen) == 2
    assert response.status_code == 409
    assert "nothing was saved" in response.get_data(as_text=True)
    with app.app_context():
        assert get_key_for(None, "groq").value == stored
