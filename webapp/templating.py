"""Jinja filters and globals."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from webapp.keys.facts import last_check

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


def day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else ""


def expiry_flag(expires_at: datetime | None) -> str | None:
    """Words for a key whose expiry reminder is near or past; None otherwise."""
    from webapp.keys.expiry import days_left, expiring_soon

    if not expiring_soon(expires_at):
        return None
    left = days_left(expires_at)  # type: ignore[arg-type]
    if left < 0:
        return "Expired"
    if left == 0:
        return "Expires today"
    return f"Expires in {left} day{'s' if left > 1 else ''}"


def is_expiring(expires_at: datetime | None) -> bool:
    from webapp.keys.expiry import expiring_soon

    return expiring_soon(expires_at)


def register(app: Flask) -> None:
    app.add_template_filter(status_label)
    app.add_template_filter(status_tone)
    app.add_template_filter(when)
    app.add_template_filter(day)
    app.add_template_global(expiry_flag)
    app.add_template_global(last_check)
    app.add_template_test(is_expiring, "expiring")
