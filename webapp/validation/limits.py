"""One budget per user for asking providers about stored keys, however the check is asked for."""

from __future__ import annotations

from webapp.extensions import limiter
from webapp.ratelimit import configured, user_rate_key

#: the dashboard's buttons, the API and the admin's global-key checks: each sends requests
#: to a provider on the user's behalf, so they all count against RATELIMIT_VALIDATE together
key_checks = limiter.shared_limit(
    configured("RATELIMIT_VALIDATE"), scope="validate", key_func=user_rate_key
)
