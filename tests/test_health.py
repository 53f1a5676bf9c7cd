"""Probes a load balancer relies on."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy import event, text

from tests.conftest import base_config
from webapp import create_app, health
from webapp.extensions import db


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {
        "status": "ok",
        "database": "ok",
        "schema": "current",
    }


def test_readyz_reports_an_unreachable_database(tmp_path):
    app = create_app(base_config(f"sqlite:///{tmp_path}/missing-dir/db.sqlite3"))
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        from webapp.extensions import db

        db.engine.dispose()


def test_connections_are_tested_before_use_only_where_a_server_can_drop_them(tmp_path):
    """A PostgreSQL connection the server closed (restart, failover, idle timeout) is
    replaced before a request uses it; a SQLite file is spared that extra round trip."""
    from webapp.extensions import db

    urls = {
        f"sqlite:///{tmp_path}/db.sqlite3": False,
        "postgresql://postgres@127.0.0.1:5432/test": True,  # the engine connects lazily
    }
    for url, pings in urls.items():
        app = create_app(base_config(url))
        with app.app_context():
            assert db.engine.pool._pre_ping is pings, url
            db.engine.dispose()
    app = create_app(
        base_config(
            "postgresql://postgres@127.0.0.1:5432/test",
            SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False},
        )
    )
    with app.app_context():
        assert db.engine.pool._pre_ping is False  # an operator's explicit choice is kept
        db.engine.dispose()


def _silent_server():
    """A TCP server that takes connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def test_a_database_that_never_answers_is_unready_within_the_probe_time(app, monkeypatch):
    # It takes the query and says nothing (a hung server): /readyz answers all the same, and
    # while that probe is out, the next ones answer "unready" at once.
    monkeypatch.setattr(health, "PROBE_TIMEOUT", 0.3)
    hung = threading.Event()

    def hang(conn, cursor, statement, *args) -> None:
        if statement.strip() == "SELECT 1":
            hung.wait(10)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", hang)
    client = app.test_client()
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        second = client.get("/readyz")
        waited = time.monotonic() - started
        assert client.get("/healthz").status_code == 200
        hung.set()
        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code != 200:  # the stuck probe comes back in time
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        hung.set()
        time.sleep(0.1)  # the probe thread leaves the hook before it is removed
        event.remove(engine, "before_cursor_execute", hang)
    assert (first.status_code, second.status_code) == (503, 503)
    assert waited < 2


def test_a_database_server_that_never_answers_is_a_503_not_a_hung_request(tmp_path):
    listener = _silent_server()
    host, port = listener.getsockname()
    url = f"postgresql://postgres@{host}:{port}/keyhold"
    app = create_app(base_config(url, DATABASE_CONNECT_TIMEOUT=2))
    try:
        started = time.monotonic()
        response = app.test_client().get("/api/api-keys/status")
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "unavailable"
    finally:
        listener.close()
        with app.app_context():
            db.engine.dispose()


def test_a_signed_in_page_is_a_503_page_when_the_database_is_down(tmp_path):
    """The error page does not ask the unreachable database who is signed in."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    url = f"postgresql://postgres@127.0.0.1:{port}/keyhold"
    app = create_app(base_config(url, DATABASE_CONNECT_TIMEOUT=2, TESTING=False))
    app.extensions["keyhold_setup"] = {"finished": True}
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1:a-session-token"
    try:
        response = client.get("/keys/", headers={"Accept": "text/html"})
        assert response.status_code == 503
        assert "Content-Security-Policy" in response.headers
        assert "try again" in response.get_data(as_text=True).lower()
    finally:
        with app.app_context():
            db.engine.dispose()


def _unmigrated(tmp_path, *, revision: str | None):
    """An app on a SQLite file migrated up to ``revision`` (None: no tables at all)."""
    from flask_migrate import upgrade

    app = create_app(base_config(f"sqlite:///{tmp_path}/unmigrated.sqlite3"))
    if revision is not None:
        with app.app_context():
            upgrade(revision=revision)
    return app


@pytest.mark.parametrize(
    ("revision", "state"), [(None, "missing"), ("0002_access_tokens", "behind")]
)
def test_readyz_is_not_ready_before_the_migrations_ran(tmp_path, revision, state):
    # A deploy that forgot (or failed) `flask db upgrade` gets no traffic from its balancer.
    app = _unmigrated(tmp_path, revision=revision)
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok", "schema": state}
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    assert client.get("/readyz").get_json() == {
        "status": "ok",
        "database": "ok",
        "schema": "current",
    }
    with app.app_context():
        db.engine.dispose()


def test_readyz_serves_on_a_schema_a_later_release_migrated(tmp_path):
    # A rolling upgrade: the new release migrated first; this one still serves meanwhile.
    app = _unmigrated(tmp_path, revision="head")
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'from_a_later_release'"))
        db.session.commit()
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["schema"] == "newer"
    with app.app_context():
        db.engine.dispose()
