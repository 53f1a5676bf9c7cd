"""Scale: one user's status call with 10, 10,000 and 100,000 users in the database.

Users (each with keys for four providers) are bulk-inserted, so the tables
grow to 400,000 key rows. At each size the same users' requests go through
the whole app in-process (routing, session and user loading, rate limiter,
query, rendering) and every SQL statement is counted with an engine event
listener. A flat time and a constant query count mean the call only ever
touches the caller's own rows, through an index.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from bench.env import Database, database, make_app, migrate
from bench.seed import (
    PROVIDERS,
    USER_AGENT,
    add_users,
    analyze,
    ensure_admin,
    session_cookie,
    user_count,
)
from bench.stats import Results, Row, Sample, joined, judge
from webapp.extensions import db

SIZES = (10, 10_000, 100_000)
FLAT_LIMIT = 1.25  # time at the largest size ÷ time at the smallest
REQUESTS = 300
MEASURED_USERS = 9  # the first users take turns, so no one hits the rate limit

#: (label, path, how to check a response shows the caller's own four keys)
ENDPOINTS = (
    ("GET /api/api-keys/status", "/api/api-keys/status"),
    ("GET /keys/ (dashboard)", "/keys/"),
)


def available_endpoints(app: Flask) -> list[tuple[str, str]]:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    return [(label, path) for label, path in ENDPOINTS if path in rules]


def _check(path: str, body: bytes, status: int) -> None:
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
    if path.startswith("/api/"):
        import json

        data = json.loads(body)
        items = data.get("providers", data) if isinstance(data, dict) else data
        stored = [p for p in items if p.get("has_key")]
        if len(stored) != len(PROVIDERS):
            raise RuntimeError(f"{path} showed {len(stored)} stored keys, not {len(PROVIDERS)}")
    elif body.count(b'class="hint"') != len(PROVIDERS):
        raise RuntimeError(f"{path} did not show the caller's {len(PROVIDERS)} masked keys")


def _round(app: Flask, path: str, cookies: list[str]) -> float:
    """Mean µs per request over one round of REQUESTS requests."""
    client = app.test_client(use_cookies=False)
    start = time.perf_counter_ns()
    for i in range(REQUESTS):
        headers = {"Cookie": cookies[i % len(cookies)], "User-Agent": USER_AGENT}
        response = client.get(path, headers=headers)
        if i % 50 == 0 or response.status_code != 200:
            _check(path, response.data, response.status_code)
    return (time.perf_counter_ns() - start) / REQUESTS / 1000


def _pre_pings(app: Flask) -> bool:
    return bool(app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"))


def _counted_round(app: Flask, path: str, cookies: list[str]) -> tuple[float, float]:
    """One round; µs per request and SQL round trips per request.

    The pool's pre-ping (a ``SELECT 1`` on every connection check-out, when
    enabled) is a round trip too, but bypasses the cursor events: it is
    counted from the check-outs.
    """
    with app.app_context():
        engine = db.engine
    pings = _pre_pings(app)
    counts = {"before_cursor_execute": 0, "checkout": 0}
    listeners = {}
    for name in counts:

        def listener(*_args, name=name):
            counts[name] += 1

        listeners[name] = listener
        event.listen(engine, name, listener)
    try:
        elapsed = _round(app, path, cookies)
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    trips = counts["before_cursor_execute"] + (counts["checkout"] if pings else 0)
    return elapsed, trips / REQUESTS


def _prepare(db_info: Database, folder: Path, size: int) -> tuple[Flask, list[str]]:
    # The limit is raised, not switched off: the limiter does the same work per request, but
    # the few measured users may send more than a person would.
    app = make_app(db_info, folder, RATELIMIT_DEFAULT="1000000/minute")
    migrate(app)
    with app.app_context():
        ensure_admin()
        ids = add_users(size - user_count())
        analyze()
        cookies = [session_cookie(app, uid) for uid in ids[:MEASURED_USERS]]
        db.session.remove()
    return app, cookies


def measure(kind: str, folder: Path, reps: int):
    """{endpoint: {size: (µs per request per rep, queries per request)}}, and whether the
    pool pre-pings (its ``SELECT 1`` is among the queries counted).

    One database per size, all ready before the first measurement; each
    repetition then visits every size in turn, so that the sizes are
    compared under the same conditions.
    """
    with ExitStack() as stack:
        apps = {
            size: _prepare(stack.enter_context(database(kind, folder)), folder, size)
            for size in SIZES
        }
        pings = _pre_pings(apps[SIZES[0]][0])
        found: dict[str, dict[int, tuple[list[float], float]]] = {}
        for label, path in available_endpoints(apps[SIZES[0]][0]):
            times: dict[int, list[float]] = {size: [] for size in SIZES}
            queries: dict[int, float] = {}
            for rep in range(reps + 1):  # the first round warms caches and is not counted
                # Alternate the order, so a drift in machine load does not favour one size.
                for size in SIZES if rep % 2 else SIZES[::-1]:
                    app, cookies = apps[size]
                    elapsed, queries[size] = _counted_round(app, path, cookies)
                    if rep:
                        times[size].append(elapsed)
            found[label] = {size: (times[size], queries[size]) for size in SIZES}
        for app, _ in apps.values():
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return found, pings


def run(results: Results, folder: Path, kinds: list[str], reps: int) -> None:
    for kind in kinds:
        found, pings = measure(kind, folder, reps)
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        for endpoint, by_size in found.items():
            for size, (times, queries) in by_size.items():
                results.add(
                    Row(
                        "2. Scale",
                        f"{endpoint}, {label}, {size:,} users: time per request",
                        Sample(times, "µs", 0),
                        note=f"{queries:g} SQL round trips per request"
                        + (" (the pool's pre-ping included)" if pings else ""),
                    )
                )
            small, large = by_size[min(by_size)], by_size[max(by_size)]
            growth = Sample([b / a for a, b in zip(small[0], large[0], strict=True)], "×", 2)
            same_queries = len({q for _, q in by_size.values()}) == 1
            flat, near = judge(growth, lambda v: v <= FLAT_LIMIT)
            queries = "queries per request: " + ", ".join(f"{q:g}" for _, q in by_size.values())
            results.add(
                Row(
                    "2. Scale",
                    f"{endpoint}, {label}: {max(by_size):,} ÷ {min(by_size):,} users",
                    growth,
                    f"≤ {FLAT_LIMIT}× and the same query count",
                    flat and same_queries,
                    note=joined(queries, near),
                )
            )
