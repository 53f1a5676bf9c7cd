"""Who a rate limit counts: the signed-in user where there is one, else the client address."""

from __future__ import annotations

from flask import request
from flask_login import current_user


def client_ip() -> str:
    # ProxyFix (enabled only by TRUSTED_PROXIES) has already rewritten remote_addr.
    return request.remote_addr or "unknown"


def default_rate_key() -> str:
    if current_user and current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"ip:{client_ip()}"


def user_rate_key() -> str:
    return default_rate_key()
