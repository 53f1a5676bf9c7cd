"""Repeated measurements and the rows of the results table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Sample:
    """Repetitions of one figure: the table shows the median and the min-max spread."""

    values: list[float]
    unit: str
    digits: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, value: float) -> str:
        return f"{value:,.{self.digits}f}"

    def text(self) -> str:
        gap = "" if self.unit in ("×", "%") else " "
        return f"{self.fmt(self.median)}{gap}{self.unit}".strip()

    def spread(self) -> str:
        if len(self.values) < 2:
            return "1 run"
        lo, hi = min(self.values), max(self.values)
        return f"{self.fmt(lo)}–{self.fmt(hi)} (n={len(self.values)})"


@dataclass
class Row:
    """One line of the results table."""

    section: str
    measure: str
    sample: Sample
    target: str = ""
    passed: bool | None = None  # None: information, no target
    note: str = ""

    @property
    def verdict(self) -> str:
        return {None: "", True: "met", False: "MISSED"}[self.passed]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    @property
    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.passed is False]


def judge(sample: Sample, ok: Callable[[float], bool]) -> tuple[bool, str]:
    """Whether ``sample`` meets a target (``ok`` of one repetition), and a note when it is
    close. Met only when every repetition meets it: a median inside the target with some
    repetitions outside it is not a target reached, and the note says how many were."""
    outside = sum(not ok(v) for v in sample.values)
    if outside and ok(sample.median):
        return False, f"median within the target, {outside} of {len(sample.values)} runs outside"
    return not outside, ""


def joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def ratio(numerator: Sample, denominator: Sample, unit: str = "×", digits: int = 2) -> Sample:
    """Per-repetition ratios: repetition i of one over repetition i of the other."""
    pairs = zip(numerator.values, denominator.values, strict=True)
    return Sample([a / b for a, b in pairs], unit, digits)


def per_op_us(fn: Callable[[], object], ops: int) -> float:
    """Mean microseconds per call of ``fn`` over ``ops`` calls."""
    start = time.perf_counter_ns()
    for _ in range(ops):
        fn()
    return (time.perf_counter_ns() - start) / ops / 1000


def render_table(results: Results) -> str:
    lines = [
        "| Benchmark | Measure | Median | Spread (min–max) | Target | Result | Note |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for r in results.rows:
        cells = [r.section, r.measure, r.sample.text(), r.sample.spread(), r.target, r.verdict]
        cells.append(r.note)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
