"""Probes a load balancer relies on."""

from __future__ import annotations

from tests.conftest import base_config
from webapp import create_app


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok"}


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
