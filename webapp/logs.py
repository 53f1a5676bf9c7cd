"""Log set-up: plain text by default, one JSON object per line with LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from flask import Flask

# Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def app_handler() -> logging.StreamHandler:
    """Keyhold's one handler on the ``webapp`` logger, created the first time it is asked for."""
    webapp_logger = logging.getLogger("webapp")
    handler = next((h for h in webapp_logger.handlers if getattr(h, "_keyhold", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._keyhold = True  # type: ignore[attr-defined]
        webapp_logger.addHandler(handler)
    return handler


class _StoreNews(logging.Filter):
    """Flask-Limiter's warnings and errors (its store unreachable, counting falling back to
    each worker), and the line that says its store is back; not its line per refusal, which
    Keyhold logs itself (webapp.ratelimit)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith(
            "Rate limit storage"
        )


def _limiter_logs(handler: logging.Handler) -> None:
    # Flask-Limiter logs to "flask-limiter", where only a NullHandler listens: without this,
    # Redis going away was silent, although every worker then counts on its own.
    limiter_logger = logging.getLogger("flask-limiter")
    if handler not in limiter_logger.handlers:
        limiter_logger.addHandler(handler)
    if not any(isinstance(f, _StoreNews) for f in limiter_logger.filters):
        limiter_logger.addFilter(_StoreNews())
    limiter_logger.setLevel(logging.INFO)
    limiter_logger.propagate = False


def configure(app: Flask) -> None:
    """One handler on the ``webapp`` logger, in the format the newest app asks for."""
    handler = app_handler()
    _limiter_logs(handler)
    webapp_logger = logging.getLogger("webapp")
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    webapp_logger.setLevel(logging.INFO)
    # The HTTP client's own debug lines hold every header a provider answers with, verbatim:
    # a gateway that names the key it refused in one would put it in the log, around the
    # scrubbing Keyhold gives what it keeps. Never below INFO, whatever the root logger says.
    for name in ("httpcore", "httpx"):
        library = logging.getLogger(name)
        if library.level < logging.INFO:  # unset (following the root) or DEBUG
            library.setLevel(logging.INFO)
