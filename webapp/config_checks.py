"""Start-up checks of settings: each refuses a value that would otherwise fail later, on
some request, or quietly serve without what the operator asked for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import click
from limits import parse_many
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def not_utf8(value: str) -> bool:
    """Whether ``value`` came from bytes that are not UTF-8 (a terminal, a file or the
    environment in another encoding): Python hands those over as lone surrogates, which no
    database, log, sign-in form or key derivation can take."""
    return any("\ud800" <= ch <= "\udfff" for ch in value)


class ConfigError(click.ClickException):
    """The configuration cannot be used; the message says what to set.

    A ClickException, so that ``flask ...`` commands print the message and
    exit instead of showing a traceback (wsgi.py does the same for gunicorn).
    """


#: the settings that are rate limits ("10/minute;50/hour"); checked at start, because
#: Flask-Limiter drops a limit it cannot parse and keeps serving without it
LIMIT_SETTINGS = (
    "RATELIMIT_DEFAULT",
    "RATELIMIT_LOGIN_IP",
    "RATELIMIT_LOGIN_ACCOUNT",
    "RATELIMIT_REGISTER",
    "RATELIMIT_KEY_WRITE",
    "RATELIMIT_VALIDATE",
    "RATELIMIT_SETUP",
    "RATELIMIT_TOKEN",
    "RATELIMIT_TOKEN_WRITE",
    "RATELIMIT_TOKEN_FAILURES",
)


def _is_limit(value: Any) -> bool:
    """Whether ``value`` reads as rate limits, as Flask-Limiter will read it."""
    try:
        return isinstance(value, str) and bool(parse_many(value))
    except ValueError:
        return False


def check_limits(config: Mapping[str, Any]) -> None:
    wrong = [f"{name}={config[name]!r}" for name in LIMIT_SETTINGS if not _is_limit(config[name])]
    if wrong:
        raise ConfigError(
            f"Not a rate limit: {', '.join(wrong)}. Write each like 10/minute or "
            "10/minute;50/hour (per second, minute, hour or day)."
        )


#: number settings and the range each must lie in (inclusive): outside it they would fail
#: every request (a NaN timeout), store rejected keys (a timeout of 0 judges nothing) or
#: refuse every form (a body limit of 0)
NUMBER_SETTINGS: dict[str, tuple[float, float]] = {
    "DATABASE_CONNECT_TIMEOUT": (2, 300),  # psycopg waits at least 2 s whatever it is given
    "VALIDATION_CONNECT_TIMEOUT": (0.1, 300),
    "VALIDATION_TIMEOUT": (0.1, 300),
    "VALIDATION_MAX_WORKERS": (1, 64),
    "MAX_CONTENT_LENGTH": (4096, 64 * 1024 * 1024),
    "TRUSTED_PROXIES": (0, 10),
    "LOGIN_FAILURE_WINDOW": (1, 7 * 24 * 3600),
    "PASSWORD_CONFIRM_WINDOW": (60, 30 * 24 * 3600),
    "LOGIN_FAILURE_WARN_AFTER": (1, 10_000),
}


def _in_range(value: Any, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


def check_numbers(config: Mapping[str, Any]) -> None:
    wrong = [
        f"{name}={config[name]!r} (from {low:g} to {high:g})"
        for name, (low, high) in NUMBER_SETTINGS.items()
        if not _in_range(config[name], low, high)
    ]
    if wrong:
        raise ConfigError(f"Out of range: {', '.join(wrong)}.")


#: the engines and drivers Keyhold is built and tested on (see the README's deployment notes)
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
_DATABASE_EXAMPLE = "postgresql://user@host:5432/keyhold or sqlite:////srv/keyhold/keyhold.db"


def check_database_url(uri: str) -> None:
    """A URL SQLAlchemy reads, of an engine and driver Keyhold runs on. The URL itself is
    never in the message: it may hold the database's password."""
    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"DATABASE_URL is not a database URL; write it like {_DATABASE_EXAMPLE}."
        ) from None
    if url.drivername not in DATABASE_DRIVERS:
        raise ConfigError(
            f"DATABASE_URL names {url.drivername!r}; Keyhold runs on SQLite and on PostgreSQL "
            f"through psycopg 3: write it like {_DATABASE_EXAMPLE}."
        )


def check_storage_uri(uri: Any, options: Mapping[str, Any] | None = None) -> None:
    """A rate-limit store the limits library can open with ``options``
    (RATELIMIT_STORAGE_OPTIONS, as Flask-Limiter passes them): Flask-Limiter would otherwise
    fail on the first request, or fall back to limits no other worker sees. Neither the URI
    nor the library's message is repeated: they may hold the store's password."""
    try:
        scheme = urlsplit(uri).scheme if isinstance(uri, str) else ""
    except ValueError:  # brackets that do not close, a port that is no number
        scheme = ""
    if scheme == "memory":
        return
    if scheme.startswith("async+"):
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI ({scheme} scheme) is a store for asyncio servers, which "
            "Keyhold is not: write it like redis://host:6379/0, or memory:// for one process."
        )
    try:
        storage_from_string(uri, **dict(options or {}))
    except Exception as exc:  # noqa: BLE001 - whatever the store's library raises, said plainly
        known = isinstance(exc, ConfigurationError) and "scheme" in str(exc)
        reason = "an unknown scheme" if scheme and known else "not usable"
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI ({scheme or 'no'} scheme) is {reason}: write it like "
            "redis://host:6379/0, or memory:// for one process."
        ) from None


def check_base_urls(config: Mapping[str, Any]) -> None:
    """``PROVIDER_<ID>_BASE_URL``: an absolute http(s) URL with a host, no query or fragment
    (the check's path is appended to it, and its key would go wherever a typo pointed)."""
    wrong = []
    for provider_id, url in (config.get("PROVIDER_BASE_URLS") or {}).items():
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
            usable = usable and not parts.query and not parts.fragment and parts.port != 0
        except (ValueError, TypeError):  # a port past 65535, brackets that do not close
            usable = False
        if not usable or parts.username is not None or parts.password is not None:
            wrong.append(f"PROVIDER_{provider_id.upper()}_BASE_URL")  # not its value: a password?
    if wrong:
        raise ConfigError(
            f"Not a base URL: {', '.join(wrong)}. Write each like https://api.example.com/v1 "
            "(http or https, a host, no query, fragment or credentials)."
        )
