"""Secret rotation: ``flask keys rotate-secret`` over 10,000 and 100,000 rows.

Each repetition runs the real command in its own process and takes its wall
time (interpreter and app start included) and its peak resident size from
the kernel (``wait4``). Repetitions rotate back and forth between two
secrets, so every run re-encrypts every row. A last run with nothing to do
gives the baseline memory of the command itself.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.env import (
    ROOT,
    SECRET_A,
    SECRET_B,
    VENV_BIN,
    Database,
    app_env,
    database,
    make_app,
    migrate,
)
from bench.seed import PROVIDERS, add_users
from bench.stats import Results, Row, Sample, judge

TARGET_ROWS_PER_S = 5000
MEMORY_GROWTH_LIMIT = 1.25  # peak at 100k rows may be at most this much above the peak at 10k


def _run_cli(env: dict[str, str], batch_size: int, folder: Path) -> tuple[float, float, str]:
    """Run the command; return (seconds, peak RSS in MiB, output)."""
    report = folder / "peakrss.txt"
    args = [sys.executable, "-m", "bench.peakrss", str(report)]
    args += [str(VENV_BIN / "flask"), "--app", "webapp", "keys", "rotate-secret"]
    args += ["--batch-size", str(batch_size)]
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"rotate-secret failed ({proc.returncode}):\n{output}")
    return elapsed, int(report.read_text()) / 1024, output


def _seed(db: Database, folder: Path, secret: str, rows: int) -> None:
    app = make_app(db, folder, secret=secret)
    with app.app_context():
        add_users(rows // len(PROVIDERS))
        from webapp.extensions import db as sa

        sa.engine.dispose()


def measure(db: Database, folder: Path, sizes: tuple[int, ...], reps: int, batch_size: int):
    """Per size: (seconds per run, peak MiB per run); then the no-op peak MiB."""
    migrate(make_app(db, folder))
    current, other = SECRET_A, SECRET_B
    seeded = 0
    found: dict[int, tuple[list[float], list[float]]] = {}
    for size in sizes:
        _seed(db, folder, current, size - seeded)
        seeded = size
        times, peaks = [], []
        for _ in range(reps):
            env = app_env(db, folder, secret=other, old=current)
            seconds, peak, output = _run_cli(env, batch_size, folder)
            if f"Re-encrypted {size} key(s)" not in output:
                raise RuntimeError(f"expected {size} rows re-encrypted:\n{output}")
            times.append(seconds)
            peaks.append(peak)
            current, other = other, current
        found[size] = (times, peaks)
    _, idle_peak, _ = _run_cli(app_env(db, folder, secret=current, old=other), batch_size, folder)
    return found, idle_peak


def run(results: Results, folder: Path, kinds: list[str], sizes: tuple[int, ...], reps: int):
    batch_size = 1000
    for kind in kinds:
        with database(kind, folder) as db:
            found, idle = measure(db, folder, sizes, reps, batch_size)
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        for size, (times, peaks) in found.items():
            rate = Sample([size / t for t in times], "rows/s", 0)
            targeted = kind == "sqlite" and size == max(sizes)
            met, note = judge(rate, lambda v: v >= TARGET_ROWS_PER_S) if targeted else (None, "")
            results.add(
                Row(
                    "5. Rotation",
                    f"{label}, {size:,} rows: rows/s (whole command)",
                    rate,
                    f"≥ {TARGET_ROWS_PER_S:,} rows/s" if targeted else "",
                    met,
                    note,
                ),
                Row(
                    "5. Rotation",
                    f"{label}, {size:,} rows: peak RSS",
                    Sample(peaks, "MiB", 1),
                    note=f"command with nothing to do: {idle:.1f} MiB",
                ),
            )
        small, large = min(found), max(found)
        growth = Sample(
            [b / a for a, b in zip(found[small][1], found[large][1], strict=True)], "×", 3
        )
        results.add(
            Row(
                "5. Rotation",
                f"{label}: peak RSS at {large:,} ÷ at {small:,} rows",
                growth,
                f"≤ {MEMORY_GROWTH_LIMIT}× (flat: batches of {batch_size})",
                *judge(growth, lambda v: v <= MEMORY_GROWTH_LIMIT),
            )
        )
