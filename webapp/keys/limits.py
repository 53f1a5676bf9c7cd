"""One budget per user for changing stored keys, however the change is asked for."""

from __future__ import annotations

from webapp.extensions import limiter
from webapp.ratelimit import configured, user_rate_key

#: saving a key (each save may ask its provider) and setting its reminder, from the pages or
#: the API: they count against RATELIMIT_KEY_WRITE together, so the API is no second budget
key_writes = limiter.shared_limit(
    configured("RATELIMIT_KEY_WRITE"), scope="key-write", key_func=user_rate_key, methods=["POST"]
)
