"""``python -m bench``: run the benchmarks, print the table, update docs/benchmarks.md."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from bench import report
from bench.env import postgres_available, workdir
from bench.stats import Results, render_table

SUITES = ("crypto", "rotation", "scale", "http", "fanout", "breakdown")
EXTRA = ("sweep",)  # only when asked for by name


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave the docs")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--connections",
        type=int,
        default=None,
        help="wrk's open connections in the HTTP suite (default 16; 1 shows a request's own "
        "cost, with no other request waiting for the interpreter)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    suites = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(suites) - set(SUITES) - set(EXTRA)
    if unknown:
        raise SystemExit(f"unknown suite(s): {', '.join(sorted(unknown))}")
    kinds = ["sqlite"]
    results = Results()
    results.conditions.append(f"machine: {report.machine()}")
    if not args.sqlite_only and postgres_available():
        kinds.append("postgresql")
    elif not args.sqlite_only:
        results.conditions.append("PostgreSQL was not reachable: its figures are missing")
    results.conditions.append(f"load average (1/5/15 min) at the start: {report.load_average()}")
    started, clock = report.now(), time.monotonic()
    with workdir() as folder:
        for suite in suites:
            print(f"== {suite}", file=sys.stderr, flush=True)
            _run_suite(suite, results, folder, kinds, args)
    results.conditions.append(f"load average (1/5/15 min) at the end: {report.load_average()}")
    seconds = time.monotonic() - clock
    command = "make bench" if not argv else "python -m bench " + " ".join(argv)
    text = report.block(results, command, started, seconds)
    print(render_table(results))
    print()
    print("\n".join(f"- {c}" for c in results.conditions))
    if not args.no_docs:
        print(f"\nwritten to {report.write_docs(text)}")
    return 1 if results.missed else 0


def _run_suite(suite: str, results: Results, folder, kinds: list[str], args) -> None:
    from bench.env import database

    reps = args.reps
    if suite == "crypto":
        from bench import crypto

        with database("sqlite", folder) as db_info:
            crypto.run(results, folder, db_info, max(reps, 5))
    elif suite == "rotation":
        from bench import rotation

        rotation.run(results, folder, kinds, (10_000, 100_000), reps)
    elif suite == "scale":
        from bench import scale

        scale.run(results, folder, kinds, max(reps, 5))
    elif suite == "http":
        from bench import http

        connections = {"connections": args.connections} if args.connections else {}
        http.run(results, folder, kinds, max(reps, 5), **connections)
    elif suite == "fanout":
        from bench import fanout

        fanout.run(results, folder, reps)
    elif suite == "breakdown":
        from bench import breakdown

        breakdown.run(results, folder, max(reps, 5))
    elif suite == "sweep":
        from bench import sweep

        sweep.run(results, folder, reps)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
