"""One budget for setup token guesses, however they arrive (setup form or API)."""

from __future__ import annotations

from typing import Any

from webapp.extensions import limiter
from webapp.ratelimit import configured
from webapp.web import request_info

#: the header that carries the one-time setup token on the API
SETUP_TOKEN_HEADER = "X-Setup-Token"


def token_guesses(**kwargs: Any):
    """Count this view against the client address's RATELIMIT_SETUP, shared by every such view."""
    return limiter.shared_limit(
        configured("RATELIMIT_SETUP"),
        scope="setup-token",
        key_func=lambda: f"ip:{request_info().ip or 'unknown'}",
        **kwargs,
    )
