"""Where a benchmark runs: its own temporary folder, its own database, its own secrets.

Nothing here touches ``instance/`` or any database it did not create: SQLite
files live in a temporary folder and PostgreSQL databases are created as
``keyhold_bench_<random>`` and dropped afterwards.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

SECRET_KEY = "bench-session-secret-" + "k" * 32
SECRET_A = "bench-encryption-secret-a-" + "a" * 32
SECRET_B = "bench-encryption-secret-b-" + "b" * 32

PG_HOST = os.environ.get("PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("PG_PORT", "5432")
PG_USER = os.environ.get("PG_USER", "postgres")
#: where several gunicorn workers share their rate-limit counts (each run uses its own prefix)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str


def _pg_admin():
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    )


def postgres_available() -> bool:
    try:
        with _pg_admin():
            return True
    except Exception:
        return False


def redis_available() -> bool:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


@contextmanager
def shared_limits() -> Iterator[dict[str, str]]:
    """Settings that make every worker count rate limits in Redis, under a prefix of this
    run's own, whose keys are deleted on exit (nothing else in that database is touched)."""
    import redis

    prefix = f"keyhold-bench-{secrets.token_hex(6)}"
    try:
        yield {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    finally:
        with redis.Redis.from_url(REDIS_URL) as client:
            for key in client.scan_iter(f"*{prefix}*", count=1000):
                client.delete(key)


@contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="keyhold-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[Database]:
    """A new, empty database of ``kind``, removed on exit."""
    if kind == "sqlite":
        path = folder / f"bench-{secrets.token_hex(4)}.sqlite3"
        yield Database(kind, f"sqlite:///{path}")
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):  # the log beside it
            path.with_name(name).unlink(missing_ok=True)
        return
    name = f"keyhold_bench_{secrets.token_hex(6)}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(kind, f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(db: Database, folder: Path, secret: str = SECRET_A, old: str = "") -> dict[str, str]:
    """The environment a production deployment would give the app (for subprocesses)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVIDER_", "GUNICORN_"))}
    env.update(
        KEYHOLD_ENV="production",
        SECRET_KEY=SECRET_KEY,
        API_KEY_ENCRYPTION_SECRET=secret,
        API_KEY_ENCRYPTION_OLD_SECRETS=old,
        DATABASE_URL=db.url,
        KEYHOLD_INSTANCE_PATH=str(folder / "instance"),
        PYTHONPATH=str(ROOT),
        RATELIMIT_STORAGE_URI="memory://",
    )
    return env


def make_app(db: Database, folder: Path, secret: str = SECRET_A, **overrides: Any) -> Flask:
    """An in-process app on ``db``, configured as in production."""
    from webapp import create_app

    os.environ.setdefault("KEYHOLD_INSTANCE_PATH", str(folder / "instance"))
    config = {
        "KEYHOLD_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "API_KEY_ENCRYPTION_SECRET": secret,
        "API_KEY_ENCRYPTION_OLD_SECRETS": "",
        "SQLALCHEMY_DATABASE_URI": db.url,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    config.update(overrides)
    app = create_app(config)
    # Per-request INFO lines would flood the output and time the terminal, not the app.
    logging.getLogger("webapp").setLevel(logging.WARNING)
    return app


def migrate(app: Flask) -> None:
    """Build the schema with the real migrations, as ``flask db upgrade`` does."""
    from flask_migrate import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
