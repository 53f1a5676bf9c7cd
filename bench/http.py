"""HTTP under load: gunicorn (gunicorn.conf.py) and wrk on loopback, and worker memory.

USERS users each hold keys for four providers. wrk sends every request with
the session of the next user in turn, to the status call, the dashboard and
``/healthz`` (the trivial endpoint, no database, same workers), alternating
endpoints inside each repetition so that all three see the same machine.
Every answer other than a 200 counts as an error (a redirect to the login
page would otherwise pass for a fast success).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import httpx

from bench.env import (
    ROOT,
    Database,
    app_env,
    database,
    make_app,
    migrate,
    redis_available,
    shared_limits,
)
from bench.scale import _check, available_endpoints
from bench.seed import USER_AGENT, signed_in_users
from bench.server import Gunicorn, config_summary, gunicorn
from bench.stats import Results, Row, Sample, joined, judge, ratio
from webapp.extensions import db

USERS = 1000
CONCURRENCY = 16
DURATION = 3  # seconds per wrk run: short windows, alternating endpoints, several repetitions
TRIVIAL = ("GET /healthz (trivial)", "/healthz")
STATUS = "GET /api/api-keys/status"
TARGET_SHARE = 0.60
TARGET_P99_MS = 50.0
LUA = ROOT / "bench" / "wrk" / "sessions.lua"
#: beside a missed target: where docs/benchmarks.md says what the profile found and what was done
PROFILED = "profiled, causes fixed and what is left: see “What was done” above"


def wrk(url: str, cookies: Path, concurrency: int, duration: int) -> dict[str, float]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "-s", str(LUA), url]
    proc = subprocess.run(args + ["--", str(cookies)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            found = json.loads(line[len("BENCH ") :])
            found["rps"] = found["requests"] / (found["duration_us"] / 1e6)
            return found
    raise RuntimeError(f"wrk printed no result:\n{proc.stdout}\n{proc.stderr}")


def prepare(db_info: Database, folder: Path, users: int = USERS) -> tuple[Path, list]:
    """Schema, users and their keys; a file of session cookies; the endpoints to load."""
    app = make_app(db_info, folder)
    migrate(app)
    _, cookies = signed_in_users(app, users)
    with app.app_context():
        db.engine.dispose()
    path = folder / "cookies.txt"
    path.write_text("\n".join(cookies) + "\n")
    return path, [TRIVIAL, *available_endpoints(app)]


def precheck(server: Gunicorn, endpoints: list, cookies: Path) -> None:
    """Each endpoint answers a logged-in user with that user's own keys."""
    cookie = cookies.read_text().splitlines()[0]
    for _, path in endpoints:
        r = httpx.get(server.url + path, headers={"Cookie": cookie, "User-Agent": USER_AGENT})
        if path == "/healthz":
            if r.status_code != 200:
                raise RuntimeError(f"/healthz answered {r.status_code}")
        else:
            _check(path, r.content, r.status_code)


def load(
    server: Gunicorn, endpoints: list, cookies: Path, reps: int, concurrency: int, duration: int
) -> dict[str, list[dict[str, float]]]:
    for _, path in endpoints:  # warm-up: imports, template compilation, connection pools
        wrk(server.url + path, cookies, concurrency, 2)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in endpoints}
    for _ in range(reps):
        for label, path in endpoints:
            cpu = server.worker_cpu_seconds()
            found = wrk(server.url + path, cookies, concurrency, duration)
            # Server CPU per request hardly depends on what else runs on the machine, so it
            # backs up the throughput ratio when the machine is not quiet.
            found["cpu_us"] = (server.worker_cpu_seconds() - cpu) / found["requests"] * 1e6
            runs[label].append(found)
    return runs


def limits_for(kind: str) -> AbstractContextManager[dict[str, str]]:
    """Each database served as it would be deployed: SQLite on one machine with rate limits
    in memory (so gunicorn runs one worker), PostgreSQL beside Redis (one worker per core)."""
    if kind == "postgresql" and redis_available():
        return shared_limits()
    return nullcontext({})


def measure(
    kind: str,
    folder: Path,
    reps: int,
    settings: dict[str, str] | None = None,
    connections: int = CONCURRENCY,
):
    settings = {"GUNICORN_ACCESSLOG": str(folder / "access.log"), **(settings or {})}
    with database(kind, folder) as db_info, limits_for(kind) as limits:
        cookies, endpoints = prepare(db_info, folder)
        env = {**app_env(db_info, folder), **limits}
        with gunicorn(env, folder / "gunicorn.log", **settings) as server:
            precheck(server, endpoints, cookies)
            rss_idle = server.worker_rss()
            runs = load(server, endpoints, cookies, reps, connections, DURATION)
            rss_after = server.worker_rss()
            restarts = server.log_text().count("Booting worker") - len(rss_after)
    return runs, rss_idle, rss_after, restarts, server.conf


def _metric(runs: list[dict[str, float]], key: str, scale: float, unit: str, digits: int):
    return Sample([r[key] * scale for r in runs], unit, digits)


def run(
    results: Results, folder: Path, kinds: list[str], reps: int, connections: int = CONCURRENCY
) -> None:
    for kind in kinds:
        runs, rss_idle, rss_after, restarts, conf = measure(
            kind, folder, reps, connections=connections
        )
        store = "memory" if conf["_limits_per_process"] else "Redis"
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        _report(results, label, runs, connections)
        results.add(
            Row(
                "6. Memory",
                f"gunicorn worker RSS after the load run, {label}",
                Sample(rss_after, "MiB", 1),
                note=f"{_workers(len(rss_after))}; after start-up and "
                f"warm-up: {max(rss_idle):.1f} MiB; worker restarts during the run: {restarts}",
            )
        )
        results.conditions.append(
            f"HTTP ({label}): {config_summary(conf)}, rate limits in {store}; "
            f"wrk 1 thread, {connections} connections, "
            f"{DURATION} s per run; {USERS:,} users × 4 keys"
        )


def _report(
    results: Results, label: str, runs: dict[str, list[dict[str, float]]], connections: int
) -> None:
    section = "1. HTTP"
    trivial = _metric(runs[TRIVIAL[0]], "rps", 1, "req/s", 0)
    trivial_cpu = _metric(runs[TRIVIAL[0]], "cpu_us", 1, "µs", 0)
    for endpoint, found in runs.items():
        checked = endpoint != TRIVIAL[0]
        p99 = _metric(found, "p99_us", 1e-3, "ms", 1)
        p99_met, p99_note = judge(p99, lambda v: v < TARGET_P99_MS) if checked else (None, "")
        results.add(
            Row(section, f"{endpoint}, {label}: throughput", _metric(found, "rps", 1, "req/s", 0)),
            Row(section, f"{endpoint}, {label}: p50", _metric(found, "p50_us", 1e-3, "ms", 1)),
            Row(
                section,
                f"{endpoint}, {label}: p99 at {connections} connections",
                p99,
                f"< {TARGET_P99_MS:g} ms" if checked else "",
                p99_met,
                note=joined(p99_note, PROFILED if p99_met is False else ""),
            ),
            Row(
                section,
                f"{endpoint}, {label}: server CPU per request",
                _metric(found, "cpu_us", 1, "µs", 0),
                note="all workers' CPU time ÷ requests served",
            ),
        )
    for endpoint, found in runs.items():
        if endpoint == TRIVIAL[0]:
            continue
        share = ratio(_metric(found, "rps", 1, "req/s", 0), trivial)
        cpu_share = ratio(trivial_cpu, _metric(found, "cpu_us", 1, "µs", 0))
        target = endpoint.startswith(STATUS)
        met, near = judge(share, lambda v: v >= TARGET_SHARE) if target else (None, "")
        note = joined(f"by server CPU per request: {cpu_share.median:.2f}×", near)
        results.add(
            Row(
                section,
                f"{endpoint} ÷ /healthz, throughput, {label}",
                share,
                f"≥ {TARGET_SHARE:.2f}×" if target else "",
                met,
                note=f"{note}; {PROFILED}" if met is False else note,
            )
        )
    errors = [r["not_ok"] + r["socket_errors"] for found in runs.values() for r in found]
    total = sum(r["requests"] for found in runs.values() for r in found)
    results.add(
        Row(
            section,
            f"errors (non-200 answers, socket errors), all endpoints, {label}",
            Sample([float(sum(errors))], "", 0),
            "0",
            sum(errors) == 0,
            note=f"out of {total:,} requests",
        )
    )


def _workers(count: int) -> str:
    return "one worker" if count == 1 else f"spread over the {count} workers"
