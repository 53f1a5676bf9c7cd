"""Validation fan-out: checking a user's keys for six providers that each take 200 ms.

The provider emulator (tests/emulator.py, a real HTTP server on loopback)
answers every check after a 200 ms delay. One repetition times a check of
one stored key, then a check of all six (``validate_all``), each including
decrypting, recording the results and their audit rows. Checks run in
parallel, so all six should cost about one, not six.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.env import Database, database, make_app, migrate
from bench.stats import Results, Row, Sample, judge, ratio
from tests.emulator import Emulator
from webapp.extensions import db

PROVIDERS = ("openai", "anthropic", "gemini", "mistral", "groq", "openrouter")
DELAY = 0.2
TARGET = 1.5


def measure(db_info: Database, folder: Path, reps: int) -> tuple[list[float], list[float]]:
    from webapp.auth.models import User
    from webapp.keys import service
    from webapp.validation.service import validate_all, validate_key

    emulator = Emulator().start()
    try:
        app = make_app(
            db_info,
            folder,
            PROVIDER_BASE_URLS=emulator.base_urls(),
            PROVIDER_BASE_URLS_CHECK_KEYS=True,  # the emulator refuses keys it does not know
        )
        migrate(app)
        one, every = [], []
        with app.app_context():
            user = User(email="fanout@example.com")
            user.set_password("bench password, not a secret")
            db.session.add(user)
            db.session.commit()
            for provider in PROVIDERS:
                service.store_key(user, provider, emulator.valid_key(provider), {})
                emulator.slow(provider, DELAY)
            validate_all(user)  # warm-up: connections, imports
            for _ in range(reps):
                start = time.perf_counter()
                single = validate_key(user, PROVIDERS[0])
                one.append(time.perf_counter() - start)
                start = time.perf_counter()
                results = validate_all(user).results
                every.append(time.perf_counter() - start)
                statuses = {r.status for r in results.values()} | {single.status}
                if len(results) != len(PROVIDERS) or statuses != {"valid"}:
                    raise RuntimeError(f"unexpected check results: {results}")
            db.session.remove()
            db.engine.dispose()
    finally:
        emulator.stop()
    return one, every


def run(results: Results, folder: Path, reps: int) -> None:
    with database("sqlite", folder) as db_info:
        one, every = measure(db_info, folder, max(reps, 5))
    single = Sample([s * 1000 for s in one], "ms", 0)
    total = Sample([s * 1000 for s in every], "ms", 0)
    share = ratio(total, single)
    results.add(
        Row("4. Fan-out", f"check one key (provider answers after {DELAY * 1000:.0f} ms)", single),
        Row("4. Fan-out", f"check all {len(PROVIDERS)} keys of one user", total),
        Row(
            "4. Fan-out",
            f"all {len(PROVIDERS)} ÷ one",
            share,
            f"≤ {TARGET}× (sequential would be {len(PROVIDERS)}×)",
            *judge(share, lambda v: v <= TARGET),
        ),
    )
