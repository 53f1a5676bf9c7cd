"""Where the status call's time goes, in-process on SQLite, against ``/healthz``.

The HTTP suite compares the status call with ``/healthz`` under gunicorn; this
one splits the difference. Each round sends ROUNDS requests through the whole
app (test client, no HTTP server) and times the pieces alone, each as a
request would run it (a fresh database session every time), taking turns in
chunks of a hundred and keeping each one's best chunk. Times are the process's
CPU time, as the HTTP suite counts the server's:

- the rate-limit check: the status call minus the same call with the limiter
  switched off between chunks (same app, database and cookies). Not a second
  app with limits off: Flask-Limiter's extension is one object per process,
  and building another app with limits off would switch them off for the app
  measured too;
- the login-session lookup: ``load_session_user`` for the cookie's session;
- the answer: the status query, the thirteen statuses and their JSON;
- the rest: what is left of the call without limits once ``/healthz``, the
  lookup and the answer are taken away (the login check, cookie and CSRF
  handling, headers).

The last row is the ratio the status call would reach in-process if its
answer cost nothing: what the per-request checks alone leave of ``/healthz``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from flask import Flask, jsonify

from bench.env import database, make_app, migrate
from bench.scale import _check
from bench.seed import USER_AGENT, signed_in_users
from bench.stats import Results, Row, Sample
from webapp.api import payloads
from webapp.auth.models import User
from webapp.auth.services import load_session_user
from webapp.extensions import db, limiter
from webapp.keys import statuses

SECTION = "7. Breakdown"
USERS = 50
ROUNDS = 1000
CHUNKS = 10
STATUS = "/api/api-keys/status"


def _timed(fn, calls: int) -> float:
    """Mean µs per call of ``fn(i)`` over ``calls`` calls."""
    start = time.process_time_ns()
    for i in range(calls):
        fn(i)
    return (time.process_time_ns() - start) / calls / 1000


def _request(app: Flask, path: str, cookies: list[str]):
    """A request through the whole app, as the i-th user in turn."""
    client = app.test_client(use_cookies=False)

    def send(i: int) -> None:
        headers = {"Cookie": cookies[i % len(cookies)], "User-Agent": USER_AGENT}
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            _check(path, response.data, response.status_code)

    return send


def _check_counted(app: Flask, cookies: list[str]) -> None:
    """Stop unless the status call is counted by the rate limiter (its budget in the headers)."""
    headers = {"Cookie": cookies[0], "User-Agent": USER_AGENT}
    response = app.test_client(use_cookies=False).get(STATUS, headers=headers)
    if "X-RateLimit-Limit" not in response.headers:
        raise RuntimeError("the status call was not rate-limited: the breakdown would be wrong")


@contextmanager
def _limits_off() -> Iterator[None]:
    """The limiter skips its checks and headers (it reads ``enabled`` on every request)."""
    limiter.enabled = False
    try:
        yield
    finally:
        limiter.enabled = True


def _lookup(logins: list[str]):
    def lookup(i: int) -> None:
        db.session.remove()  # as a request starts: a new session, nothing cached
        if load_session_user(logins[i % len(logins)]) is None:
            raise RuntimeError("the login session was not found")

    return lookup


def _answer(users: list[User]):
    def answer(i: int) -> None:
        db.session.remove()
        found = statuses.list_status(users[i % len(users)])
        jsonify(providers=[payloads.key_status(s) for s in found]).get_data()

    return answer


def _login_ids(app: Flask, cookies: list[str]) -> list[str]:
    """``<user id>:<token>`` of each cookie's login session, as Flask-Login hands it over."""
    serializer = app.session_interface.get_signing_serializer(app)
    return [serializer.loads(c.partition("=")[2])["_user_id"] for c in cookies]


def measure(folder: Path, reps: int) -> dict[str, list[float]]:
    with database("sqlite", folder) as db_info:
        limited = make_app(db_info, folder, RATELIMIT_DEFAULT="1000000/minute")
        migrate(limited)
        ids, cookies = signed_in_users(limited, USERS)
        logins = _login_ids(limited, cookies)
        with limited.app_context():
            users = [db.session.get(User, uid) for uid in ids]
            db.session.remove()
        _check_counted(limited, cookies)
        pieces = {
            "healthz": _request(limited, "/healthz", cookies),
            "status": _request(limited, STATUS, cookies),
            "unlimited": _request(limited, STATUS, cookies),
            "lookup": _lookup(logins),
            "answer": _answer(users),
        }
        # The pieces timed alone run in a request context of their own; the requests through
        # the app must not (they would share its ``g``: the user loaded once for all of them).
        alone = {"lookup", "answer"}
        found: dict[str, list[float]] = {key: [] for key in pieces}
        for rep in range(reps + 1):  # the first round warms caches and is not counted
            # Pieces take turns in short chunks and each keeps its best chunk: a burst of
            # other work on the machine then spoils one chunk, not the difference.
            best = {key: float("inf") for key in pieces}
            for _ in range(CHUNKS):
                for key, fn in pieces.items():
                    if key in alone:
                        context = limited.test_request_context(
                            "/", headers={"User-Agent": USER_AGENT}
                        )
                    else:
                        context = _limits_off() if key == "unlimited" else nullcontext()
                    with context:
                        best[key] = min(best[key], _timed(fn, ROUNDS // CHUNKS))
                        if key in alone:
                            db.session.remove()
            if rep:
                for key, value in best.items():
                    found[key].append(value)
        _check_counted(limited, cookies)
        with limited.app_context():
            db.session.remove()
            db.engine.dispose()
    return found


def run(results: Results, folder: Path, reps: int) -> None:
    m = measure(folder, reps)
    n = len(m["status"])
    limit = [m["status"][i] - m["unlimited"][i] for i in range(n)]
    rest = [m["unlimited"][i] - m["healthz"][i] - m["lookup"][i] - m["answer"][i] for i in range(n)]
    no_answer = [m["healthz"][i] / (m["status"][i] - m["answer"][i]) for i in range(n)]
    share = [m["healthz"][i] / m["status"][i] for i in range(n)]
    rows = [
        ("GET /healthz, whole request", m["healthz"], ""),
        ("GET /api/api-keys/status, whole request", m["status"], ""),
        ("of which the rate-limit check (status call minus the same with limits off)", limit, ""),
        ("of which the login-session lookup (one query, the user loaded)", m["lookup"], ""),
        ("of which the answer (status query, 13 statuses, JSON)", m["answer"], ""),
        (
            "of which the rest beyond /healthz (login check, cookie, CSRF, headers)",
            rest,
            "the status call with limits off, minus /healthz, the lookup and the answer",
        ),
    ]
    for measure_, values, note in rows:
        results.add(
            Row(SECTION, f"{measure_}, SQLite in-process", Sample(values, "µs", 0), note=note)
        )
    results.add(
        Row(
            SECTION,
            "/healthz ÷ status call, time per request, SQLite in-process",
            Sample(share, "×", 2),
        ),
        Row(
            SECTION,
            "/healthz ÷ status call if its answer cost nothing, SQLite in-process",
            Sample(no_answer, "×", 2),
            note="what the per-request checks (limit, session, login) alone leave",
        ),
    )
