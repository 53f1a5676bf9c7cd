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


def configure(app: Flask) -> None:
    """One handler on the ``webapp`` logger, in the format the newest app asks for."""
    handler = app_handler()
    webapp_logger = logging.getLogger("webapp")
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    webapp_logger.setLevel(logging.INFO)
