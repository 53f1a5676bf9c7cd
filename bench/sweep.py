"""Choosing gunicorn's workers and threads: ``python -m bench --only sweep --no-docs``.

Not part of ``make bench`` (it takes several minutes more). For each
setting, the status call and /healthz are loaded as in the HTTP benchmark
(every setting with its rate limits in Redis, which several workers need),
and the worker CPU per request is read from /proc, which shows what a
setting costs even when the machine is not quiet.
"""

from __future__ import annotations

from pathlib import Path

from bench.env import REDIS_URL, app_env, database, redis_available, shared_limits
from bench.http import CONCURRENCY, STATUS, TRIVIAL, load, precheck, prepare
from bench.server import gunicorn, shape
from bench.stats import Results, Row, Sample

SETTINGS = (
    # (workers, threads, max_requests)
    (1, 4, 0),
    (2, 2, 0),
    (2, 4, 0),
    (3, 2, 0),
    (4, 1, 0),
    (4, 2, 0),
    (4, 4, 0),
    (2, 4, 5000),
    (4, 2, 100000),
)


def run(results: Results, folder: Path, reps: int) -> None:
    if not redis_available():
        raise SystemExit(f"the sweep needs Redis at {REDIS_URL}: several workers share limits")
    with database("sqlite", folder) as db_info, shared_limits() as limits:
        cookies, endpoints = prepare(db_info, folder)
        endpoints = [e for e in endpoints if e[0] in (TRIVIAL[0], STATUS)]
        env = {**app_env(db_info, folder), **limits}
        for workers, threads, max_requests in SETTINGS:
            settings = {
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_THREADS": str(threads),
                "GUNICORN_MAX_REQUESTS": str(max_requests),
                "GUNICORN_ACCESSLOG": str(folder / "access.log"),
            }
            with gunicorn(env, folder / "gunicorn.log", **settings) as server:
                precheck(server, endpoints, cookies)
                runs = load(server, endpoints, cookies, reps, CONCURRENCY, 4)
                rss = max(server.worker_rss())
            name = shape(workers, threads)
            if max_requests:
                name += f", max_requests {max_requests}"
            for endpoint, found in runs.items():
                short = "healthz" if endpoint == TRIVIAL[0] else "status"
                results.add(
                    Row(
                        "Tuning",
                        f"{name}: {short} throughput",
                        Sample([r["rps"] for r in found], "req/s", 0),
                    ),
                    Row(
                        "Tuning",
                        f"{name}: {short} p99",
                        Sample([r["p99_us"] / 1000 for r in found], "ms", 1),
                    ),
                    Row(
                        "Tuning",
                        f"{name}: {short} CPU per request",
                        Sample([r["cpu_us"] for r in found], "µs", 0),
                        note=f"largest worker RSS {rss:.0f} MiB" if short == "status" else "",
                    ),
                )
