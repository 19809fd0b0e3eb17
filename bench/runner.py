"""The runner's own cost and its concurrency (the runner issue's benchmarks).

1. Engine overhead per page: the default demo workspace (20 x 4) with `latency_ms=0`, so every
   microsecond is ours (plus the simulator's page building, measured separately and subtracted):
   median per page over several sweeps, and pages/s.
2. Concurrency: with `latency_ms=20`, the wall time of a full sweep at `--workers 1, 4, 16` against
   the ideal, total request latency / workers. Target: within 15% of ideal at 16 workers.

   Two bounds computed from the sweep's own pairs say how close any runner can get: a pair's
   requests are sequential (each needs the page token of the one before), so with the pairs
   started in the resume plan's order (DESIGN 7: subject-major) even a runner that costs no CPU
   finishes no sooner than the greedy schedule of those pairs onto the workers; started longest
   first (which needs each pair's size before fetching it), the schedule is shorter.
"""

from __future__ import annotations

import heapq
import sqlite3
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from harness import Table, scratch, verdict

from sweepledger.collectors.protocol import SERVICES, FetchRequest
from sweepledger.collectors.runner import RunOptions, SweepRunner
from sweepledger.collectors.sim.source import SimSource
from sweepledger.ledger.store import SqliteStore


def _sweep(url: str, workers: int, db: Path) -> tuple[float, int]:
    source = SimSource(url)
    started = time.perf_counter()
    SweepRunner(db, source, RunOptions(source.url, SERVICES, max_pages=None, workers=workers)).run()
    seconds = time.perf_counter() - started
    with SqliteStore.open(db, readonly=True) as store:
        pages = store.conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'PAGE'").fetchone()
    return seconds, int(pages[0])


def _source_seconds(url: str) -> tuple[float, int]:
    """Time the simulator alone takes to build every page of a full sweep (not our cost), and
    how many requests (each one a `latency_ms` sleep) a sweep makes."""
    source = SimSource(url)
    started = time.perf_counter()
    requests = 0
    for subject in source.roster():
        for service in SERVICES:
            units = source.units(service, subject)
            requests += service == "chat"
            for unit in units or [None]:
                token, carry = None, {}
                while True:
                    page = source.fetch(FetchRequest(service, subject, unit, {}, token, carry))
                    requests += 1
                    if page.exhausted:
                        break
                    token, carry = page.next_page_token, page.carry
    return time.perf_counter() - started, requests


def pair_requests(db: Path) -> list[int]:
    """Requests per pair in the resume plan's order: its pages, plus one listing of its units
    for a service that has them (chat)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT service, subject, COUNT(*) FILTER (WHERE kind = 'PAGE'), "
            "MAX(json_extract(data, '$.units') IS NOT NULL) FILTER (WHERE kind = 'START') "
            "FROM events WHERE service IS NOT NULL GROUP BY service, subject"
        ).fetchall()
    finally:
        conn.close()
    size = {(service, subject): pages + int(bool(units)) for service, subject, pages, units in rows}
    plan = sorted(size, key=lambda pair: (pair[1].casefold(), SERVICES.index(pair[0])))
    return [size[pair] for pair in plan]


def schedule_seconds(requests: Sequence[int], workers: int, latency_s: float) -> float:
    """Makespan of starting the pairs in this order, each on the first free worker, at zero CPU."""
    free = [0.0] * workers
    for n in requests:
        heapq.heappush(free, heapq.heappop(free) + n * latency_s)
    return max(free)


def main(quick: bool) -> None:
    rounds = 3 if quick else 7
    source_s, requests = _source_seconds("sim://")
    per_page, rates = [], []
    for i in range(rounds):
        seconds, pages = _sweep("sim://", 1, scratch(f"runner-overhead-{i}.db"))
        per_page.append((seconds - source_s) / pages * 1e6)
        rates.append(pages / seconds)
    table = Table(
        "runner: engine overhead per page (sim://, latency 0, 20 x 4, 1 worker)",
        ["figure", "value"],
    )
    table.add("pages per sweep", pages)
    table.add("engine overhead per page, median (us)", f"{statistics.median(per_page):.0f}")
    table.add("pages/s, median (sweep incl. simulator)", f"{statistics.median(rates):.0f}")
    table.add("simulator's own page building per page (us)", f"{source_s / pages * 1e6:.0f}")
    table.note(
        "overhead = (sweep wall time - simulator time) / pages; includes the fsync of each "
        "commit (synchronous=FULL)"
    )
    table.print()

    latency = 20
    concurrency = Table(
        f"runner: full sweep at latency_ms={latency} against the ideal",
        ["workers", "wall s", "ideal s", "ratio", "target", "verdict"],
    )
    bounds = Table(
        f"runner: the schedule's own bounds at latency_ms={latency} (zero CPU)",
        ["workers", "ideal s", "plan order s", "ratio", "longest first s", "ratio"],
    )
    for workers in (1, 4, 16):
        url = f"sim://?latency_ms={latency}"
        db = scratch(f"runner-workers-{workers}.db")
        seconds, _ = _sweep(url, workers, db)
        ideal = requests * latency / 1000 / workers
        sizes = pair_requests(db)
        in_order = schedule_seconds(sizes, workers, latency / 1000)
        longest = schedule_seconds(sorted(sizes, reverse=True), workers, latency / 1000)
        bounds.add(
            workers,
            f"{ideal:.2f}",
            f"{in_order:.2f}",
            f"{in_order / ideal:.2f}",
            f"{longest:.2f}",
            f"{longest / ideal:.2f}",
        )
        target = "<= 1.15" if workers == 16 else ""
        met = seconds / ideal <= 1.15 if workers == 16 else None
        concurrency.add(
            workers,
            f"{seconds:.2f}",
            f"{ideal:.2f}",
            f"{seconds / ideal:.2f}",
            target,
            verdict(met) if workers == 16 else "",
        )
    concurrency.note(
        f"ideal = {requests} requests x {latency} ms / workers (no CPU, perfect "
        "packing); the longest pair's pages are sequential, which bounds the ideal "
        "from below too"
    )
    concurrency.print()
    bounds.note(
        "plan order = greedy schedule of the pairs' request counts in the resume plan's order, "
        "the best a zero-CPU runner can do without knowing sizes; longest first = the same "
        "pairs sorted by size"
    )
    bounds.print()


if __name__ == "__main__":
    main(quick=True)
