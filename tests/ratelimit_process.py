"""A second Keyhold process for the shared-store test: ``python -m tests.ratelimit_process``.

Reads ``{"db_url", "config", "email", "attempts"}`` as JSON on stdin, builds
its own app (its own Flask-Limiter, its own storage connection), makes that
many failed login attempts and prints their status codes as a JSON list.
"""

from __future__ import annotations

import json
import sys

from tests.conftest import AuthActions, BrowserClient, base_config
from webapp import create_app


def main() -> None:
    job = json.load(sys.stdin)
    app = create_app(base_config(job["db_url"], **job["config"]))
    app.test_client_class = BrowserClient
    auth = AuthActions(app.test_client())
    codes = [
        auth.login(job["email"], password="not the password at all").status_code
        for _ in range(job["attempts"])
    ]
    print(json.dumps(codes))


if __name__ == "__main__":
    main()
