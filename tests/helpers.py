"""Helpers for tests: stored keys without a provider check, and a rate-limit store's cleanup."""

from __future__ import annotations

import redis
from flask import Flask

from tests.fakekeys import fake_key
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys import service
from webapp.keys.models import UserAPIKey


def store(app: Flask, email: str, provider: str, key: str | None = None, **config) -> str:
    """Store a key for ``email`` directly through the service; return its plaintext."""
    key = key or fake_key(provider)
    with app.app_context():
        service.store_key(find_user(email), provider, key, config)
    return key


def rows_of(app: Flask, email: str) -> list[UserAPIKey]:
    with app.app_context():
        user = find_user(email)
        rows = db.session.scalars(db.select(UserAPIKey).filter_by(user_id=user.id)).all()
        db.session.expunge_all()
        return list(rows)


def bodyless(client, method: str, path: str):
    """An unsafe request with no body at all, as a frontend's fetch() would send it."""
    headers = {"X-CSRFToken": client.csrf_token()}
    return client.open(path, method=method, headers=headers, csrf=False)


def drop_redis_keys(uri: str, pattern: str) -> None:
    """Delete the keys matching ``pattern`` (a Redis glob) from the database at ``uri``."""
    client = redis.Redis.from_url(uri)
    keys = list(client.scan_iter(pattern))
    if keys:
        client.delete(*keys)
    client.close()
