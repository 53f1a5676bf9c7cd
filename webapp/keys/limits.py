"""One budget per user for changing stored keys, however the change is asked for."""

from __future__ import annotations

from flask import request

from webapp.extensions import limiter
from webapp.ratelimit import configured, user_rate_key
from webapp.setup.limits import SETUP_TOKEN_HEADER

#: saving a key (each save may ask its provider) and setting its reminder, from the pages or
#: the API: they count against RATELIMIT_KEY_WRITE together, so the API is no second budget
key_writes = limiter.shared_limit(
    configured("RATELIMIT_KEY_WRITE"), scope="key-write", key_func=user_rate_key, methods=["POST"]
)


#: an admin saving global keys, from the admin pages or the API: one RATELIMIT_KEY_WRITE
#: budget, as for a user's own keys. The setup token's holder (before any admin exists) is
#: bounded by the setup token's budget instead.
global_key_writes = limiter.shared_limit(
    configured("RATELIMIT_KEY_WRITE"),
    scope="global-key-write",
    key_func=user_rate_key,
    methods=["POST"],
    # Only the API takes the setup token (and checks it); on the admin pages the header
    # means nothing and exempts nothing.
    exempt_when=lambda: (
        request.endpoint == "api.set_initial" and SETUP_TOKEN_HEADER in request.headers
    ),
)
