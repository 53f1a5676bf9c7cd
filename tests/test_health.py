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
