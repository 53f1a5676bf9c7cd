"""The conditions of a run, and the results block of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.env import ROOT
from bench.stats import Results, render_table

DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- results:begin (written by make bench) -->"
END = "<!-- results:end -->"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown memory"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {_memory_gib()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def block(results: Results, command: str, started: datetime, seconds: float) -> str:
    conditions = "\n".join(f"- {c}" for c in results.conditions)
    missed = results.missed
    verdict = (
        "Every target was met."
        if not missed
        else "Targets missed: " + "; ".join(f"{r.section} {r.measure}" for r in missed) + "."
    )
    return (
        f"{BEGIN}\n"
        f"Run on {started:%Y-%m-%d %H:%M} UTC at commit {_commit()} with `{command}` "
        f"({seconds / 60:.1f} minutes).\n\n"
        f"{render_table(results)}\n\n"
        f"{verdict}\n\n"
        f"Conditions:\n{conditions}\n"
        f"{END}"
    )


def write_docs(text: str) -> Path:
    """Replace the results block of docs/benchmarks.md, keeping the prose around it."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        current = head + text + tail
    else:
        current = (current.rstrip() + "\n\n" if current else "# Benchmarks\n\n") + text + "\n"
    DOCS.write_text(current, encoding="utf-8")
    return DOCS


def now() -> datetime:
    return datetime.now(UTC)
