"""Jinja filters and globals."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

STATUS_LABELS = {
    "none": ("No key", "muted"),
    "unchecked": ("Not checked", "muted"),
    "valid": ("Valid", "ok"),
    "invalid": ("Invalid", "bad"),
    "forbidden": ("Not permitted", "warn"),
    "quota_exceeded": ("Out of credit", "warn"),
    "rate_limited": ("Check throttled", "warn"),
    "provider_error": ("Provider error", "warn"),
    "network_error": ("Provider unreachable", "warn"),
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, (status.replace("_", " ").capitalize(), "muted"))[0]


def status_tone(status: str) -> str:
    return STATUS_LABELS.get(status, ("", "muted"))[1]


def when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def register(app: Flask) -> None:
    app.add_template_filter(status_label)
    app.add_template_filter(status_tone)
    app.add_template_filter(when)
