"""What every benchmark module shares: where data lives, timing, figures, tables and profiles.

Benchmarks print figures, they never assert on them: a timing depends on the disk and the CPU of
the day, so each figure is printed beside a baseline measured in the same run, as a ratio, with the
target the issue sets. A figure that misses its target is a finding to report, not a failure.
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import re
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NUMERIC = re.compile(r"[~<>=+-]*\s*[\d.]")
"""Cells that read as numbers (right-aligned): `12.3 k`, `~1 200`, `>= 1.00 M`, `0.45x`."""

DATA_DIR = Path(__file__).resolve().parent / ".data"
"""Generated ledgers and scratch databases; git-ignored, safe to delete at any time."""


def data_dir() -> Path:
    """The data folder, created on first use."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR


def scratch(name: str) -> Path:
    """A fresh path under the data folder: any earlier file and its WAL companions are removed."""
    path = data_dir() / name
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def seconds_of(action: Callable[[], object]) -> float:
    """Wall time of one call (perf_counter: monotonic, sub-microsecond)."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def repeat_ms(action: Callable[[], object], times: int, *, warmup: int = 1) -> list[float]:
    """Milliseconds of `times` calls, after `warmup` calls that fill the OS and SQLite caches."""
    for _ in range(warmup):
        action()
    return [seconds_of(action) * 1000.0 for _ in range(times)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank (with 20 samples: the second largest)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))
    return ordered[rank]


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def human(value: float) -> str:
    """A number short enough for a table cell: 1 234, 12.3 k, 4.56 M."""
    if not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 10_000_000:
        return f"{value / 1_000_000:.1f} M"
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.2f} M"
    if magnitude >= 100_000:
        return f"{value / 1000:.0f} k"
    if magnitude >= 10_000:
        return f"{value / 1000:.1f} k"
    if magnitude >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def count(value: int) -> str:
    """An exact count with thin groups: 1 006 574."""
    return f"{value:,}".replace(",", " ")


def ratio(ours: float, baseline: float) -> str:
    """`ours / baseline` as `1.23x` (higher is better for rates)."""
    if baseline <= 0 or not math.isfinite(ours) or not math.isfinite(baseline):
        return "-"
    return f"{ours / baseline:.2f}x"


def verdict(met: bool | None) -> str:
    """The word printed beside a target; None when the figure cannot be judged (not measured)."""
    if met is None:
        return "n/a"
    return "meets" if met else "MISSES"


@dataclass
class Table:
    """A plain text table: a title, column headers, rows of cells and notes under it.

    Numbers are right-aligned, text left-aligned, so a figure and its target line up.
    """

    title: str
    headers: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: Sequence[str]) -> str:
            out = []
            for i, cell in enumerate(cells):
                numeric = cell == "-" or bool(_NUMERIC.match(cell))
                out.append(cell.rjust(widths[i]) if numeric and i else cell.ljust(widths[i]))
            return "  ".join(out).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        parts = [f"\n== {self.title}", rule, line(self.headers), rule]
        parts += [line(row) for row in self.rows]
        parts.append(rule)
        parts += [f"  {note}" for note in self.notes]
        return "\n".join(parts)

    def print(self) -> None:
        print(self.render(), flush=True)


def progress(message: str) -> None:
    """A progress line for long steps (building big ledgers takes minutes)."""
    print(f"   .. {message}", flush=True)


def profile_top(action: Callable[[], object], *, limit: int = 14, sort: str = "tottime") -> str:
    """cProfile of one call: the `limit` functions with the most own time, as pstats prints them.

    cProfile slows small Python functions more than C calls, so read it for *where* time goes,
    not for how much the whole takes; the benchmark's own timings are taken without it.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    lines = out.getvalue().splitlines()
    start = next((i for i, text in enumerate(lines) if text.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:]).rstrip()


def file_mb(path: Path) -> float:
    """Size of a database with its WAL, in MB."""
    total = 0
    for suffix in ("", "-wal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            total += candidate.stat().st_size
    return total / 1_000_000


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (what a careful writer does after os.replace)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Timer = Callable[[Path, Callable[[], None]], float]
"""Times the appends of one run (the setup before them is not timed)."""


def plain_timer(path: Path, action: Callable[[], None]) -> float:
    return seconds_of(action)


class WalProbe:
    """Counts the pages the timed transactions write to the WAL, per b-tree (table or index).

    A commit appends one WAL frame per page it changed and syncs them: the bytes behind each
    fsync. Read from the WAL file itself (frame headers name the page) and `dbstat` (which b-tree
    owns each page); valid while no checkpoint resets the WAL, so probe fewer than ~1 000 pages.
    """

    def __init__(self) -> None:
        self.pages: Counter[str] = Counter()

    def __call__(self, path: Path, action: Callable[[], None]) -> float:
        wal = Path(f"{path}-wal")
        offset = wal.stat().st_size if wal.exists() else 0
        seconds = seconds_of(action)
        data = wal.read_bytes()
        page_size = int.from_bytes(data[8:12], "big")
        numbers: Counter[int] = Counter()
        position = max(offset, 32)
        while position + 24 + page_size <= len(data):
            numbers[int.from_bytes(data[position : position + 4], "big")] += 1
            position += 24 + page_size
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        finally:
            conn.close()
        for number, frames in numbers.items():
            self.pages[owner.get(number, "(header or free)")] += frames
        return seconds
