"""The checked-in migrations build exactly the schema the models describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, make_url, text

from tests.conftest import base_config
from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def empty_database(db_url, tmp_path) -> Iterator[str]:
    """A database of the suite's engine with nothing in it."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    name = f"keyhold_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _schema_diff(app) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_match_models_and_round_trip(empty_database):
    app = create_app(base_config(empty_database))
    with app.app_context():
        try:
            upgrade()
            assert _schema_diff(app) == []
            tables = set(inspect(db.engine).get_table_names())
            assert {"users", "user_api_keys", "global_api_keys", "audit_events"} <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            assert _schema_diff(app) == []
        finally:
            db.session.remove()
            db.engine.dispose()
