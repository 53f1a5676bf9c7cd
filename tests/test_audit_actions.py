"""Each audited action leaves exactly one row, with the right actor, subject and outcome; a change
whose audit row cannot be written is not made (and a ``failed`` row says so)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import ADMIN_EMAIL, PASSWORD, AuthActions
from tests.fakekeys import fake_key
from tests.helpers import bodyless, rows_of, store
from tests.token_helpers import ALICE, BOB
from webapp.audit import service as audit_service
from webapp.audit.actions import ACTIONS
from webapp.audit.models import AuditEvent
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.tokens.models import AccessToken

NEW_PASSWORD = PASSWORD + " again"


@dataclass
class World:
    """Alice (signed in, with an OpenAI key), the admin (signed in), and their ids."""

    app: object
    alice: object
    admin: object
    ids: dict[str, int | None]

    def anonymous(self):
        return self.app.test_client()


@pytest.fixture
def world(app, user_client, admin_client) -> World:
    alice = user_client(ALICE)
    store(app, ALICE, "openai")
    with app.app_context():
        ids = {ALICE: find_user(ALICE).id, ADMIN_EMAIL: find_user(ADMIN_EMAIL).id, None: None}
    return World(app, alice, admin_client, ids)


def _global_groq(w: World) -> None:
    body = {"provider": "groq", "api_key": fake_key("groq"), "validate": False}
    assert w.admin.post("/api/api-keys/set-initial", json=body).status_code == 201


def _token(w: World) -> int:
    response = w.alice.post("/api/tokens", json={"name": "cron"})
    assert response.status_code == 201
    return response.get_json()["access_token"]["id"]


def _kept_signed_in(w: World) -> None:
    """Alice on a browser that "Keep me signed in" brought back (its session cookie gone)."""
    kept = w.app.test_client()
    AuthActions(kept).login(ALICE, remember="y")
    kept.delete_cookie("session")
    w.kept = kept  # type: ignore[attr-defined]


# (name, what to do first, the action, [(action, actor, subject, outcome)]); actors and
# subjects are emails (None: nobody), BOB is filled in once he exists.
CASES: list[tuple[str, Callable | None, Callable, list[tuple]]] = [
    (
        "register",
        None,
        lambda w: AuthActions(w.anonymous()).register(BOB),
        [("user.register", BOB, BOB, "ok")],
    ),
    (
        "login",
        None,
        lambda w: AuthActions(w.anonymous()).login(ALICE),
        [("auth.login", ALICE, ALICE, "ok")],
    ),
    (
        "login failure",
        None,
        lambda w: AuthActions(w.anonymous()).login(ALICE, password="wrong " + PASSWORD),
        [("auth.login", None, ALICE, "denied")],
    ),
    ("logout", None, lambda w: w.alice.post("/auth/logout"), [("auth.logout", ALICE, ALICE, "ok")]),
    (
        "password confirmed",
        _kept_signed_in,
        lambda w: w.kept.post("/auth/confirm", data={"password": PASSWORD}),
        [("auth.confirm", ALICE, ALICE, "ok")],
    ),
    (
        "password confirmation refused",
        _kept_signed_in,
        lambda w: w.kept.post("/auth/confirm", data={"password": "wrong " + PASSWORD}),
        [("auth.confirm", ALICE, ALICE, "denied")],
    ),
    (
        "password change",
        None,
        lambda w: w.alice.post(
            "/auth/password",
            data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        [("auth.password_change", ALICE, ALICE, "ok")],
    ),
    (
        "password change refused",
        None,
        lambda w: w.alice.post(
            "/auth/password",
            data={
                "current": "wrong " + PASSWORD,
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        ),
        [("auth.password_change", ALICE, ALICE, "denied")],
    ),
    (
        "key set",
        None,
        lambda w: w.alice.post(
            "/api/api-keys/set",
            json={"provider": "groq", "api_key": fake_key("groq"), "validate": False},
        ),
        [("key.set", ALICE, ALICE, "ok")],
    ),
    (
        "key replace",
        None,
        lambda w: w.alice.post(
            "/api/api-keys/set",
            json={"provider": "openai", "api_key": fake_key("openai"), "validate": False},
        ),
        [("key.replace", ALICE, ALICE, "ok")],
    ),
    (
        "key delete",
        None,
        lambda w: w.alice.post("/keys/openai/delete"),
        [("key.delete", ALICE, ALICE, "ok")],
    ),
    (
        "clear all",
        None,
        lambda w: bodyless(w.alice, "DELETE", "/api/api-keys/"),
        [("key.clear_all", ALICE, ALICE, "ok")],
    ),
    (
        "validate",
        None,
        lambda w: w.alice.post("/keys/openai/validate"),
        [("key.validate", ALICE, ALICE, "ok")],
    ),
    (
        "expiry",
        None,
        lambda w: w.alice.post("/api/api-keys/expiry/openai", json={"expires_at": None}),
        [("key.expiry", ALICE, ALICE, "ok")],
    ),
    ("global key set", None, _global_groq, [("global_key.set", ADMIN_EMAIL, ADMIN_EMAIL, "ok")]),
    (
        "global key replace",
        _global_groq,
        lambda w: w.admin.post(
            "/api/api-keys/set-initial",
            json={"provider": "groq", "api_key": fake_key("groq"), "validate": False},
        ),
        [("global_key.replace", ADMIN_EMAIL, ADMIN_EMAIL, "ok")],
    ),
    (
        "global key delete",
        _global_groq,
        lambda w: w.admin.post("/admin/keys/groq/delete"),
        [("global_key.delete", ADMIN_EMAIL, ADMIN_EMAIL, "ok")],
    ),
    (
        "fallback toggle",
        _global_groq,
        lambda w: w.admin.post("/admin/keys/groq/fallback", data={"enabled": "off"}),
        [("global_key.fallback", ADMIN_EMAIL, ADMIN_EMAIL, "ok")],
    ),
    (
        "admin page refused",
        None,
        lambda w: w.alice.get("/admin/keys"),
        [("access.denied", ALICE, ALICE, "denied")],
    ),
    ("token create", None, _token, [("token.create", ALICE, ALICE, "ok")]),
    (
        "token revoke",
        _token,
        lambda w: bodyless(w.alice, "DELETE", f"/api/tokens/{w.ids['token']}"),
        [("token.revoke", ALICE, ALICE, "ok")],
    ),
    (
        "token rotate",
        _token,
        lambda w: w.alice.post(f"/api/tokens/{w.ids['token']}/rotate", json={}),
        [("token.rotate", ALICE, ALICE, "ok")],
    ),
    (
        "purge",
        None,
        lambda w: w.app.test_cli_runner().invoke(args=["keys", "purge-user", ALICE, "--yes"]),
        [("user.purge", None, ALICE, "ok")],
    ),
]


def _rows_after(app, last_id: int) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def _last_id(app) -> int:
    with app.app_context():
        db.session.remove()
        return db.session.scalar(db.select(db.func.max(AuditEvent.id))) or 0


@pytest.mark.parametrize(("name", "before", "act", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_action_leaves_exactly_one_row(world, name, before, act, expected):
    if before is not None:
        result = before(world)
        if name.startswith("token"):
            world.ids["token"] = result
    last = _last_id(world.app)
    act(world)
    rows = _rows_after(world.app, last)
    with world.app.app_context():
        bob = find_user(BOB)
    ids = {**world.ids, BOB: bob.id if bob else None}
    want = [
        (action, ids[actor], ids[subject], outcome) for action, actor, subject, outcome in expected
    ]
    got = [(r.action, r.actor_user_id, r.subject_user_id, r.outcome) for r in rows]
    assert got == want


def test_the_table_names_most_actions():
    covered = {row[0] for case in CASES for row in case[3]}
    # Covered elsewhere: setup (test_setup.py), rotation (test_rotation.py), rate limits
    # (test_ratelimit.py), token failures and resolve (test_tokens_*.py), pruning.
    elsewhere = {
        "setup.token_issued",
        "setup.token_accepted",
        "setup.complete",
        "admin.create",
        "secret.rotate",
        "secret.rotate_finished",
        "ratelimit.hit",
        "token.resolve",
        "token.auth_failed",
        "audit.prune",
    }
    assert covered | elsewhere == set(ACTIONS)


@pytest.fixture
def broken_audit(monkeypatch):
    """The next audit row fails to be written, as a full disk or a lost connection would."""
    real = audit_service.chain_hash
    state = {"armed": False}

    def chain_hash(prev_hash, event):
        if state["armed"]:
            state["armed"] = False
            raise RuntimeError("audit write failed")
        return real(prev_hash, event)

    monkeypatch.setattr(audit_service, "chain_hash", chain_hash)

    def arm() -> None:
        state["armed"] = True

    return arm


def _failed_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(
            db.select(AuditEvent).filter_by(action=action, outcome="failed")
        ).all()
        db.session.expunge_all()
        return list(rows)


@pytest.fixture
def fragile(make_app, user_client):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    alice = app.test_client()
    AuthActions(alice).register(ALICE)
    store(app, ALICE, "openai")
    return app, alice


def test_a_key_is_not_stored_when_its_audit_row_fails(fragile, broken_audit):
    app, alice = fragile
    broken_audit()
    body = {"provider": "groq", "api_key": fake_key("groq"), "validate": False}
    response = alice.post("/api/api-keys/set", json=body)
    assert response.status_code == 500
    assert [r.provider for r in rows_of(app, ALICE)] == ["openai"]
    (failed,) = _failed_rows(app, "key.set")
    assert failed.provider == "groq"


def test_a_key_is_not_deleted_when_its_audit_row_fails(fragile, broken_audit):
    app, alice = fragile
    broken_audit()
    assert alice.post("/keys/openai/delete").status_code == 500
    assert [r.provider for r in rows_of(app, ALICE)] == ["openai"]
    assert len(_failed_rows(app, "key.delete")) == 1


def test_a_password_is_not_changed_when_its_audit_row_fails(fragile, broken_audit):
    app, alice = fragile
    broken_audit()
    data = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert alice.post("/auth/password", data=data).status_code == 500
    assert AuthActions(app.test_client()).login(ALICE).status_code == 302  # the old one works
    assert len(_failed_rows(app, "auth.password_change")) == 1


def test_a_token_is_not_issued_when_its_audit_row_fails(fragile, broken_audit):
    app, alice = fragile
    broken_audit()
    assert alice.post("/api/tokens", json={"name": "cron"}).status_code == 500
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AccessToken)) == 0
    assert len(_failed_rows(app, "token.create")) == 1
