"""Bulk data for the benchmarks, inserted directly (no per-row ORM or password hashing).

Every key is really encrypted under the app's keyring, bound to its owner and
provider, so rotation and decryption do the same work they would on real
data. Users share one password hash: scrypt per user would take minutes and
measures nothing here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from flask import Flask, session
from flask_login import login_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, insert, text

from webapp.auth.models import User
from webapp.auth.services import open_session
from webapp.crypto import KeyScope, current_keyring, mask_key
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.models import UserAPIKey

PROVIDERS = ("openai", "anthropic", "groq", "mistral")
PASSWORD = "bench password, not a secret"
USER_AGENT = "keyhold-bench"
CHUNK = 5000


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fake_key(provider: str) -> str:
    # Shaped like the provider's keys, about as long; the status and crypto paths never parse it.
    prefixes = {"openai": "sk-proj-", "anthropic": "sk-ant-api03-", "groq": "gsk_"}
    return prefixes.get(provider, "") + secrets.token_urlsafe(72)


def user_count() -> int:
    return db.session.scalar(db.select(func.count()).select_from(User)) or 0


def add_users(count: int, providers: Sequence[str] = PROVIDERS) -> list[int]:
    """Add ``count`` users, each with a key for every one of ``providers``; return their ids.

    The first call also adds an admin account (not among the ids returned),
    so the instance counts as set up and no request is sent to /setup.
    """
    ensure_admin()
    start = (db.session.scalar(db.select(func.max(User.id))) or 0) + 1
    ids = list(range(start, start + count))
    now = utcnow()
    password_hash = _password_hash()
    keyring = current_keyring()
    for chunk in _chunks(ids):
        db.session.execute(
            insert(User.__table__),
            [
                {
                    "id": uid,
                    "email": f"bench{uid}@example.com",
                    "password_hash": password_hash,
                    "is_admin": False,
                    "created_at": now,
                }
                for uid in chunk
            ],
        )
        rows = []
        for uid in chunk:
            for provider in providers:
                plaintext = _fake_key(provider)
                sealed = keyring.encrypt(KeyScope.for_user(uid, provider), plaintext)
                rows.append(
                    {
                        "user_id": uid,
                        "provider": provider,
                        "encrypted_key": sealed.ciphertext,
                        "key_hash": sealed.key_hash,
                        "key_version": sealed.version,
                        "key_hint": mask_key(plaintext),
                        "config": {},
                        "models": [],
                        "details": {},
                        "status": "valid",
                        "is_valid": True,
                        "last_validated": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        if rows:
            db.session.execute(insert(UserAPIKey.__table__), rows)
        db.session.commit()
    _fix_sequences()
    return ids


def ensure_admin() -> None:
    if db.session.scalar(db.select(User.id).filter_by(is_admin=True).limit(1)) is None:
        admin = User(email="bench-admin@example.com", is_admin=True)
        admin.password_hash = _password_hash()
        db.session.add(admin)
        db.session.commit()


_HASH: list[str] = []


def _password_hash() -> str:
    if not _HASH:
        user = User(email="x")
        user.set_password(PASSWORD)
        _HASH.append(user.password_hash)
    return _HASH[0]


def _fix_sequences() -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in ("users", "user_api_keys"):
        db.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )
    db.session.commit()


def analyze() -> None:
    """Refresh planner statistics after a bulk load, as autovacuum would."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def session_cookie(app: Flask, user_id: int, remote_addr: str = "127.0.0.1") -> str:
    """A signed session cookie for ``user_id``, as a browser holds it after logging in.

    Built in-process so that load tests do not go through the rate-limited
    login form; the app checks it exactly as it checks any other session. It
    carries the CSRF token the first page put in the session, as a browser's
    does: without it, every page would add one and send a new cookie back.
    """
    with app.test_request_context(
        "/", environ_base={"REMOTE_ADDR": remote_addr}, headers={"User-Agent": USER_AGENT}
    ):
        user = db.session.get(User, user_id)
        user.proven_hash = user.password_hash  # as signing in with its password leaves it
        open_session(user)
        login_user(user)
        generate_csrf()
        value = app.session_interface.get_signing_serializer(app).dumps(dict(session))
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"


def signed_in_users(app: Flask, count: int) -> tuple[list[int], list[str]]:
    """``count`` new users with their keys, and a session cookie for each."""
    with app.app_context():
        ids = add_users(count)
        analyze()
        cookies = [session_cookie(app, uid) for uid in ids]
        db.session.remove()
    return ids, cookies
