"""Configuration: defaults, then the environment, then explicit overrides.

Development needs no environment at all: missing secrets are generated once
and kept under ``instance/`` (mode 0700, files 0600). Production refuses to
start without them, because a generated secret would silently change on the
next machine: every session would end and every stored key become unreadable.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from webapp.config_checks import (
    ConfigError,
    check_base_urls,
    check_database_url,
    check_limits,
    check_numbers,
    check_storage_uri,
    not_utf8,
)
from webapp.providers.catalog import Provider, all_providers

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production", "testing")


class Secret(NamedTuple):
    name: str
    filename: str  # under instance/, in development
    loss: str  # what losing it does, for the warning when it is generated


SECRETS = (
    Secret("SECRET_KEY", "secret_key", "a new one signs everybody out"),
    Secret(
        "API_KEY_ENCRYPTION_SECRET",
        "encryption_secret",
        "losing it makes every stored key unreadable",
    ),
)

MIN_SECRET_LENGTH = 32
_GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _env_bool(name: str, default: bool) -> bool:
    """An on/off setting. Anything else is refused: a typo in SESSION_COOKIE_SECURE must
    not quietly turn the flag (and HSTS with it) off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(
            f"{name} must be on or off (1/0, true/false, yes/no, on/off), got {raw!r}"
        )
    return value in _TRUE


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def normalise_database_url(url: str) -> str:
    """Point postgres URLs at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_database_url(instance_path: str) -> str:
    """The SQLite file in the instance folder, used when DATABASE_URL is not set."""
    return f"sqlite:///{Path(instance_path) / 'keyhold.sqlite3'}"


def defaults(instance_path: str) -> dict[str, Any]:
    env = os.environ.get("KEYHOLD_ENV", "development").strip().lower()
    production = env == "production"
    return {
        "KEYHOLD_ENV": env,
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "API_KEY_ENCRYPTION_SECRET": os.environ.get("API_KEY_ENCRYPTION_SECRET"),
        "API_KEY_ENCRYPTION_OLD_SECRETS": os.environ.get("API_KEY_ENCRYPTION_OLD_SECRETS", ""),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL") or default_database_url(instance_path)
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "DATABASE_CONNECT_TIMEOUT": _env_int("DATABASE_CONNECT_TIMEOUT", 5),
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 64 * 1024),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", production),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": True,
        # CSRF is checked by webapp.tokens.bearer instead, on every request that is
        # not authenticated by an access token alone (those carry no cookies to forge).
        "WTF_CSRF_CHECK_DEFAULT": False,
        # Personal access tokens.
        "TOKEN_DEFAULT_EXPIRY_DAYS": _env_int("TOKEN_DEFAULT_EXPIRY_DAYS", 90),
        "TOKEN_MAX_EXPIRY_DAYS": _env_int("TOKEN_MAX_EXPIRY_DAYS", 365),
        "TOKEN_ALLOW_NO_EXPIRY": _env_bool("TOKEN_ALLOW_NO_EXPIRY", False),
        "TOKEN_ROTATION_GRACE_HOURS": _env_int("TOKEN_ROTATION_GRACE_HOURS", 24),
        "TOKEN_MAX_GRACE_HOURS": _env_int("TOKEN_MAX_GRACE_HOURS", 168),
        "TOKEN_MAX_PER_USER": _env_int("TOKEN_MAX_PER_USER", 50),
        # Whether keys:resolve may hand out the admin's global fallback key in plaintext.
        "TOKEN_RESOLVE_GLOBAL_KEYS": _env_bool("TOKEN_RESOLVE_GLOBAL_KEYS", False),
        "RATELIMIT_TOKEN": os.environ.get("RATELIMIT_TOKEN", "300/minute"),
        "RATELIMIT_TOKEN_WRITE": os.environ.get("RATELIMIT_TOKEN_WRITE", "30/hour"),
        "RATELIMIT_TOKEN_FAILURES": os.environ.get(
            "RATELIMIT_TOKEN_FAILURES", "20/minute;100/hour"
        ),
        # Rate limiting (Flask-Limiter reads the RATELIMIT_* names itself).
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Lets several Keyhold instances (or other apps) share one Redis database.
        "RATELIMIT_KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", ""),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_DEFAULT": os.environ.get("RATELIMIT_DEFAULT", "600/minute"),
        "RATELIMIT_LOGIN_IP": os.environ.get("RATELIMIT_LOGIN_IP", "10/minute;50/hour"),
        "RATELIMIT_LOGIN_ACCOUNT": os.environ.get("RATELIMIT_LOGIN_ACCOUNT", "10/minute;50/hour"),
        "RATELIMIT_REGISTER": os.environ.get("RATELIMIT_REGISTER", "5/minute;20/hour"),
        "RATELIMIT_KEY_WRITE": os.environ.get("RATELIMIT_KEY_WRITE", "60/hour"),
        "RATELIMIT_VALIDATE": os.environ.get("RATELIMIT_VALIDATE", "30/hour"),
        # A rate-limit store that goes away (Redis restarting) degrades to per-process
        # counting instead of failing every request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Monitoring: repeated login failures for one account are logged as warnings.
        "LOGIN_FAILURE_WINDOW": _env_int("LOGIN_FAILURE_WINDOW", 15 * 60),
        "PASSWORD_CONFIRM_WINDOW": _env_int("PASSWORD_CONFIRM_WINDOW", 2 * 3600),
        "LOGIN_FAILURE_WARN_AFTER": _env_int("LOGIN_FAILURE_WARN_AFTER", 5),
        "AUDIT_PAGE_SIZE": 50,
        "RATELIMIT_SETUP": os.environ.get("RATELIMIT_SETUP", "10/minute;50/hour"),
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        # Provider checks.
        "VALIDATION_CONNECT_TIMEOUT": _env_float("VALIDATION_CONNECT_TIMEOUT", 3.0),
        "VALIDATION_TIMEOUT": _env_float("VALIDATION_TIMEOUT", 10.0),
        "VALIDATION_MAX_WORKERS": _env_int("VALIDATION_MAX_WORKERS", 8),
        "ALLOW_HTTP_ENDPOINTS": _env_bool("ALLOW_HTTP_ENDPOINTS", False),
        "ALLOW_PRIVATE_ENDPOINTS": _env_bool("ALLOW_PRIVATE_ENDPOINTS", False),
        "PROVIDER_BASE_URLS": _provider_base_urls(),
        # Whether those URLs refuse keys as the providers do (a proxy passing requests on):
        # if not said, a key one of them lets in is confirmed by a made-up key being refused.
        "PROVIDER_BASE_URLS_CHECK_KEYS": _env_bool("PROVIDER_BASE_URLS_CHECK_KEYS", False),
        "KEYS_PAGE_SIZE": 50,
        # Where the one-time setup token is written (mode 0600) until setup is finished.
        "SETUP_TOKEN_FILE": os.environ.get("SETUP_TOKEN_FILE")
        or str(Path(instance_path) / "setup-token"),
    }


def _base_url_settings() -> Iterator[tuple[Provider, str, str]]:
    """Each provider with a ``PROVIDER_<ID>_BASE_URL`` set: the provider, the name, the value."""
    for provider in all_providers():
        name = f"PROVIDER_{provider.id.upper()}_BASE_URL"
        value = os.environ.get(name, "").strip()
        if value:
            yield provider, name, value


def _provider_base_urls() -> dict[str, str]:
    """``PROVIDER_<ID>_BASE_URL`` for each provider with a fixed base URL."""
    return {p.id: value for p, _, value in _base_url_settings() if p.base_url is not None}


def warn_about_ignored_settings() -> None:
    """Azure OpenAI and the custom provider are reached at the endpoint each user gives, so
    a base URL variable for them would change nothing: say so rather than let an operator
    believe it routes anything. Called once logging is set up, to be in its format."""
    for provider, name, _ in _base_url_settings():
        if provider.base_url is None:
            log.warning(
                "%s is ignored: %s keys are checked at the endpoint each user gives.",
                name,
                provider.name,
            )


def announce_default_database(app: Flask) -> None:
    """In production, say which database is used when DATABASE_URL is not set: a cron job or
    a unit file that lost the variable would otherwise run on an empty SQLite file of its own
    without a word. Called once logging is set up, to be in its format."""
    if app.config["KEYHOLD_ENV"] != "production" or os.environ.get("DATABASE_URL"):
        return
    default = default_database_url(app.instance_path)
    if app.config["SQLALCHEMY_DATABASE_URI"] != default:
        return  # set by the caller
    log.warning(
        "DATABASE_URL is not set: using the SQLite file %s. Set DATABASE_URL if this "
        "deployment keeps its keys elsewhere.",
        default.removeprefix("sqlite:///"),
        extra={"event": "config.default_database"},
    )


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides``; no secrets yet."""
    app.config.from_mapping(defaults(app.instance_path))
    if overrides:
        app.config.from_mapping(overrides)
    env = app.config["KEYHOLD_ENV"]
    if env not in ENVIRONMENTS:
        # A typo ("prod") must not quietly run production as development.
        raise ConfigError(f"KEYHOLD_ENV is {env!r}; set it to one of: {', '.join(ENVIRONMENTS)}.")
    check_limits(app.config)
    check_numbers(app.config)
    check_base_urls(app.config)
    check_storage_uri(
        app.config["RATELIMIT_STORAGE_URI"], app.config.get("RATELIMIT_STORAGE_OPTIONS")
    )
    log_format = str(app.config["LOG_FORMAT"]).strip().lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {app.config['LOG_FORMAT']!r}.")
    app.config["LOG_FORMAT"] = log_format
    uri = app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    check_database_url(uri)
    # A database server may drop idle connections (restarts, failovers, idle timeouts):
    # test each one as the pool hands it out. A SQLite file cannot go away like that, so
    # it is spared the extra round trip on every request.
    # A database error's message lists the values bound to its statement (ciphertext, key
    # hashes, password hashes), and an unhandled one is logged with it: leave them out.
    server = not uri.startswith("sqlite")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": server,
        "hide_parameters": True,
        # A database server that takes the connection and then says nothing must not hold
        # a request (and its thread) for as long as the operating system lets it.
        **(
            {"connect_args": {"connect_timeout": app.config["DATABASE_CONNECT_TIMEOUT"]}}
            if server
            else {}
        ),
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    }
    try:
        # instance/ holds development secrets, the SQLite file and the setup token.
        os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    except OSError:
        pass  # a read-only deployment keeps nothing there; whatever needs it will say so
    _private_sqlite_file(app.instance_path, uri)


def _private_sqlite_file(instance_path: str, uri: str) -> None:
    """Create a new SQLite database file readable by its owner alone (its write-ahead log
    and index files take the same mode): it holds password hashes, sealed keys and the
    audit trail. An existing file keeps the mode it has."""
    try:
        url = make_url(uri)
    except ArgumentError:
        return  # SQLAlchemy says what is wrong with it when it connects
    name = url.database or ""
    if not url.drivername.startswith("sqlite") or name in ("", ":memory:") or "mode=memory" in name:
        return
    path = Path(name) if Path(name).is_absolute() else Path(instance_path) / name
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        pass  # there already, or not writable here: SQLite itself will say what is wrong


def load_secrets(app: Flask) -> None:
    """Check the secrets; in development, generate missing ones (and log that).

    Every problem is reported at once, in one message.
    """
    production = app.config["KEYHOLD_ENV"] == "production"
    missing = [s.name for s in SECRETS if not app.config.get(s.name)]
    problems = []
    if production and missing:
        verb = "is" if len(missing) == 1 else "are"
        problems.append(
            f"{' and '.join(missing)} {verb} not set (in production every secret must come "
            "from the environment)."
        )
    elif missing:
        for secret in SECRETS:
            if secret.name in missing:
                app.config[secret.name] = _instance_secret(app.instance_path, secret)
    for secret in SECRETS:
        value = app.config.get(secret.name)
        if value and len(value.strip()) < MIN_SECRET_LENGTH:
            problems.append(
                f"{secret.name} must be at least {MIN_SECRET_LENGTH} characters long, not "
                "counting spaces."
            )
    given = [app.config.get(s.name) for s in SECRETS]
    if all(given) and len({value.strip() for value in given}) < len(given):
        problems.append(
            "SECRET_KEY and API_KEY_ENCRYPTION_SECRET are the same: each protects something "
            "else (sessions; stored keys), so each needs a secret of its own."
        )
    for name in (*(s.name for s in SECRETS), "API_KEY_ENCRYPTION_OLD_SECRETS"):
        value = app.config.get(name)
        if isinstance(value, str) and not_utf8(value):
            problems.append(f"{name} holds bytes that are not UTF-8 text; set it in UTF-8.")
    if problems:
        raise ConfigError(
            f"Keyhold cannot start: {' '.join(problems)} Generate a secret with: {_GENERATE}"
        )


def _read_secret_file(path: Path, secret: Secret) -> str:
    """A development secret as written (an editor's byte-order mark and line ending aside)."""
    where = f"or set {secret.name} in the environment."
    try:
        value = path.read_bytes().decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not text (UTF-8): restore it from a backup, {where}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}): fix it, {where}") from None
    if not value.isascii():
        raise ConfigError(f"{path} is not text (ASCII): restore it from a backup, {where}")
    return value


def _instance_secret(instance_path: str, secret: Secret) -> str:
    """Read a development secret from instance/, creating it (0600) if missing."""
    path = Path(instance_path) / secret.filename
    if path.exists():
        value = _read_secret_file(path, secret)
        if not value:
            raise ConfigError(
                f"{path} is empty: restore it from a backup, or remove it to have a new "
                f"{secret.name} generated ({secret.loss}); or set {secret.name} in the "
                "environment."
            )
        return value
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"{secret.name} is not set and cannot be generated in {path} ({exc.strerror}): "
            f"set it in the environment."
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
    log.warning(
        "%s was not set; generated one in %s. Set it in the environment before deploying: %s.",
        secret.name,
        path,
        secret.loss,
        extra={"event": "config.secret_generated", "secret": secret.name},
    )
    return value
